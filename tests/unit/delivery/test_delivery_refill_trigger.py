"""When a backlogged endpoint is read from the outbox again: once a quarter of its window is
free (or all of it), not after every settled output (each read walks all its sessions)."""

from __future__ import annotations

import asyncio
import itertools

from flowhook.delivery.dispatcher import Dispatcher
from flowhook.delivery.retry import RetryPolicy
from flowhook.delivery.testing import RecordingLedger
from flowhook.delivery.types import AttemptResult, PendingDelivery, WebhookTarget

OK = AttemptResult(status=200, duration_ms=1.0)
_ids = itertools.count(1)


def item(session: str) -> PendingDelivery:
    outbox_id = next(_ids)
    return PendingDelivery(outbox_id, f"dlv-{outbox_id}", "e1", session, 1, session.encode())


class Gate:
    """A transport whose POST of each body answers 200 once that body is let through."""

    def __init__(self) -> None:
        self.open: dict[bytes, asyncio.Event] = {}

    def let_through(self, body: bytes) -> None:
        self.open.setdefault(body, asyncio.Event()).set()

    async def post(
        self, target: WebhookTarget, body: bytes, headers: dict[str, str]
    ) -> AttemptResult:
        await self.open.setdefault(body, asyncio.Event()).wait()
        return OK

    async def close(self) -> None:
        return None


async def resolve(endpoint_id: str) -> WebhookTarget | None:
    return WebhookTarget(url="http://e1.test/hook")


async def test_a_backlogged_endpoint_is_read_again_once_a_quarter_of_its_window_is_free() -> None:
    """Window of 8, all taken, a ninth output left in the outbox: the first settled output
    does not ask for a read (1 of 8 free), the second does (2 of 8)."""
    asked: list[str] = []
    gate = Gate()
    ledger = RecordingLedger()
    d = Dispatcher(
        gate, resolve, ledger, RetryPolicy([]), window_per_endpoint=8, on_backlog=asked.append
    )
    await d.start()
    try:
        items = [item(f"s{n}") for n in range(9)]
        d.submit(items)
        assert d.held_of("e1") == 8
        assert asked == ["e1"]  # the ninth did not fit: the endpoint is backlogged

        gate.let_through(items[0].body)
        async with asyncio.timeout(5):
            await ledger.wait_for("delivered", 1)
        assert asked == ["e1"]

        gate.let_through(items[1].body)
        async with asyncio.timeout(5):
            await ledger.wait_for("delivered", 2)
        assert asked == ["e1", "e1"]
    finally:
        for i in items:
            gate.let_through(i.body)
        await d.stop()
