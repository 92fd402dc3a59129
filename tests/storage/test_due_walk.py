"""The refill's walk of an endpoint's sessions on both backends: a read visits sessions
only until it has what it may take (its work does not grow with the sessions owed
something), and successive reads resume where the last one stopped, so every session is
served in turn."""

from __future__ import annotations

import time

import sqlalchemy as sa

from flowhook.storage.deliveries import DeliveryStore
from flowhook.storage.store import SqlStore
from tests.storage.test_due_read import add, counting_work


def _analyze(store: SqlStore) -> None:
    if store.engine.dialect.name == "postgresql":
        with store.engine.begin() as conn:  # as autovacuum would: fresh statistics
            conn.execute(sa.text("ANALYZE outbox"))


async def test_a_read_visits_sessions_only_until_it_has_enough(store: SqlStore) -> None:
    """Taking 10 outputs of an endpoint with 2,000 sessions owed one each costs the
    database no more than of one with 200: the walk stops once it has what it may take
    (it walked every session before)."""
    ds = DeliveryStore(store)
    now = time.time()

    async def work_with(sessions: int) -> int:
        endpoint = f"busy{sessions}"
        for n in range(sessions):
            add(store, endpoint, f"s{n:05d}", 1)
        _analyze(store)
        await ds.due(endpoint, now, 10)  # warm: statement caches, pages
        with counting_work(store.engine) as work:
            due = await ds.due(endpoint, now, 10)
        assert len(due.all()) == 10
        return work[0]

    small = await work_with(200)
    large = await work_with(2000)
    assert small > 0
    assert large <= small + small // 2, (small, large)


async def test_successive_reads_serve_every_session_in_turn(store: SqlStore) -> None:
    """30 sessions of one output each, 10 taken per read: three reads resuming where the
    last stopped take the 30 heads once each; the fourth starts again from the first
    session. A read that visited every session and took fewer than its limit is complete."""
    ds = DeliveryStore(store)
    now = time.time()
    heads = [add(store, "e1", f"s{n:02d}", 1)[0] for n in range(30)]
    seen: list[int] = []
    after = None
    for _ in range(3):
        due = await ds.due("e1", now, 10, after=after)
        assert not due.complete
        seen += due.heads
        after = due.resume_after
    assert sorted(seen) == heads
    again = await ds.due("e1", now, 10, after=after)
    assert again.heads == heads[:10]

    everything = await ds.due("e1", now, 100, after="s14")
    assert everything.complete
    assert everything.resume_after is None
    assert sorted(everything.heads) == heads
