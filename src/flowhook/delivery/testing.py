"""In-memory test doubles for code that drives a ``Dispatcher`` (no storage needed)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from flowhook.delivery.types import AttemptResult, PendingDelivery


@dataclass(frozen=True, slots=True)
class Outcome:
    """One ledger call, as recorded by ``RecordingLedger``."""

    kind: str  # "delivered" | "retry_later" | "failed"
    item: PendingDelivery
    attempt: AttemptResult
    attempts: int
    not_before: float | None = None


class RecordingLedger:
    """A ``DeliveryLedger`` that keeps every outcome in a list, in call order."""

    def __init__(self) -> None:
        self.outcomes: list[Outcome] = []
        self._changed = asyncio.Event()

    async def delivered(self, item: PendingDelivery, attempt: AttemptResult) -> None:
        self._add(Outcome("delivered", item, attempt, item.attempts + 1))

    async def retry_later(
        self, item: PendingDelivery, attempt: AttemptResult, attempts: int, not_before: float
    ) -> None:
        self._add(Outcome("retry_later", item, attempt, attempts, not_before))

    async def failed(self, item: PendingDelivery, attempt: AttemptResult, attempts: int) -> None:
        self._add(Outcome("failed", item, attempt, attempts))

    def _add(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        self._changed.set()

    def of_kind(self, kind: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.kind == kind]

    async def wait_for(self, kind: str, count: int) -> None:
        """Wait until at least ``count`` outcomes of ``kind`` were recorded.

        Wrap it in ``asyncio.timeout`` in tests."""
        while len(self.of_kind(kind)) < count:
            self._changed.clear()
            await self._changed.wait()
