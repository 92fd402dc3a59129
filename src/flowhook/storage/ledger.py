"""The delivery ledger over the Store: every attempt logged, the outbox row moved on."""

from __future__ import annotations

from flowhook.delivery.types import AttemptResult, PendingDelivery
from flowhook.storage.store import SqlStore


class StoreLedger:
    def __init__(self, store: SqlStore) -> None:
        self._store = store

    async def delivered(self, item: PendingDelivery, attempt: AttemptResult) -> None:
        await self._store.record_attempt(
            item, attempt, status="delivered", attempts=item.attempts + 1
        )

    async def retry_later(
        self, item: PendingDelivery, attempt: AttemptResult, attempts: int, not_before: float
    ) -> None:
        await self._store.record_attempt(
            item, attempt, status="pending", attempts=attempts, not_before=not_before
        )

    async def failed(self, item: PendingDelivery, attempt: AttemptResult, attempts: int) -> None:
        await self._store.record_attempt(item, attempt, status="failed", attempts=attempts)
