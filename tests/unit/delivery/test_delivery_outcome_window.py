"""The window slot of an output whose final outcome is being written: given back as soon as
the write is queued, while the output stays held (not taken again) and at the head of its
session (the session's next output waits for the write), and taken again while the ledger
refuses the write."""

from __future__ import annotations

import asyncio
import itertools

from flowhook.delivery.dispatcher import Dispatcher
from flowhook.delivery.retry import RetryPolicy
from flowhook.delivery.testing import RecordingLedger
from flowhook.delivery.types import AttemptResult, PendingDelivery, WebhookTarget

OK = AttemptResult(status=200, duration_ms=1.0)
_ids = itertools.count(1)


def item(seq: int, session: str, endpoint: str = "e1") -> PendingDelivery:
    outbox_id = next(_ids)
    body = f"{endpoint}/{session}/{seq}".encode()
    return PendingDelivery(outbox_id, f"dlv-{outbox_id}", endpoint, session, seq, body)


class Posts:
    """A transport that answers 200 and keeps the bodies it was sent, in order."""

    def __init__(self) -> None:
        self.bodies: list[str] = []
        self.posted = asyncio.Event()

    async def post(
        self, target: WebhookTarget, body: bytes, headers: dict[str, str]
    ) -> AttemptResult:
        self.bodies.append(body.decode())
        self.posted.set()
        return OK

    async def close(self) -> None:
        return None


async def resolve(endpoint_id: str) -> WebhookTarget | None:
    return WebhookTarget(url=f"http://{endpoint_id}.test/hook")


class GatedLedger(RecordingLedger):
    """``delivered`` writes of the gated outbox ids wait for ``commit`` (a group commit
    that has not happened yet); ``refusals`` of them are refused first."""

    def __init__(self, gated: set[int], refusals: int = 0) -> None:
        super().__init__()
        self.gated = gated
        self.refusals = refusals
        self.commit = asyncio.Event()
        self.queued = asyncio.Event()
        self.writes = 0  # writes of gated ids queued, refused ones included
        self.tried_again = asyncio.Event()

    async def delivered(self, item: PendingDelivery, attempt: AttemptResult) -> None:
        if item.outbox_id in self.gated:
            self.writes += 1
            self.queued.set()
            if self.writes > 1:
                self.tried_again.set()
            if self.refusals:
                self.refusals -= 1
                raise RuntimeError("database is locked")
            await self.commit.wait()
        await super().delivered(item, attempt)


async def test_a_2xx_gives_the_window_slot_back_before_its_write_commits() -> None:
    """With a window of one output, a 2xx's write that has not committed yet does not hold
    the window: another session's output is taken and POSTed meanwhile, and the delivered
    one stays held (not taken again from the outbox) until its write commits."""
    first, other = item(1, "A"), item(1, "B")
    ledger = GatedLedger({first.outbox_id})
    posts = Posts()
    d = Dispatcher(posts, resolve, ledger, RetryPolicy([]), window_per_endpoint=1)
    await d.start()
    try:
        d.submit([first])
        async with asyncio.timeout(5):
            await ledger.queued.wait()
        assert d.room_for("e1", 100) == 1
        assert d.in_window("e1") == 0
        assert d.holds(first.outbox_id)  # an outbox read must not hand it over again
        assert d.held_of("e1") == 1  # it is still pending in the outbox

        d.submit([other, first])  # e.g. an outbox read that saw both pending
        async with asyncio.timeout(5):
            await ledger.wait_for("delivered", 1)  # the other session's output
        assert posts.bodies == ["e1/A/1", "e1/B/1"]
        assert d.holds(first.outbox_id)

        ledger.commit.set()
        await d.run_until_idle(timeout=5)
        assert not d.holds(first.outbox_id)
        assert d.held_of("e1") == 0
        assert d.room_for("e1", 100) == 1
        assert [o.item.outbox_id for o in ledger.of_kind("delivered")] == [
            other.outbox_id,
            first.outbox_id,
        ]
        assert posts.bodies == ["e1/A/1", "e1/B/1"]  # nothing sent twice
    finally:
        await d.stop()


async def test_the_sessions_next_output_waits_for_the_write_of_the_one_before() -> None:
    """A slot given back early does not let the session's next output overtake: it is taken
    into memory, but POSTed only once the write of the one before committed."""
    first, second = item(1, "A"), item(2, "A")
    ledger = GatedLedger({first.outbox_id})
    posts = Posts()
    d = Dispatcher(posts, resolve, ledger, RetryPolicy([]), window_per_endpoint=1)
    await d.start()
    try:
        d.submit([first])
        async with asyncio.timeout(5):
            await ledger.queued.wait()
        d.submit([second])
        assert d.holds(second.outbox_id)
        for _ in range(20):
            await asyncio.sleep(0)
        assert posts.bodies == ["e1/A/1"]
        assert ledger.of_kind("delivered") == []

        ledger.commit.set()
        await d.run_until_idle(timeout=5)
        assert posts.bodies == ["e1/A/1", "e1/A/2"]
        assert [o.item.seq for o in ledger.of_kind("delivered")] == [1, 2]
    finally:
        await d.stop()


async def test_a_refused_write_takes_its_slot_again_until_it_is_taken() -> None:
    """Once the ledger refused a 2xx's write, the output counts in the window again (memory
    stays bounded while storage refuses writes), also while the write is tried again; once
    the write is taken, the slot is free."""
    first, other = item(1, "A"), item(1, "B")
    ledger = GatedLedger({first.outbox_id}, refusals=1)
    posts = Posts()
    d = Dispatcher(posts, resolve, ledger, RetryPolicy([]), window_per_endpoint=1)
    await d.start()
    try:
        d.submit([first])
        async with asyncio.timeout(5):
            await ledger.tried_again.wait()
        assert d.room_for("e1", 100) == 0
        d.submit([other])
        assert not d.holds(other.outbox_id)  # no room: it stays in the outbox

        ledger.commit.set()
        await d.run_until_idle(timeout=5)
        assert d.held_of("e1") == 0
        assert d.room_for("e1", 100) == 1
        assert posts.bodies == ["e1/A/1"]
    finally:
        await d.stop()
