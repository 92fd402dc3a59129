"""The refill's read of an endpoint's due outputs (``DeliveryStore.due_ids``) on both
backends: what it answers, and that its work does not grow with the outputs waiting
behind a session's head."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from flowhook.storage.deliveries import DeliveryStore
from flowhook.storage.store import SqlStore
from tests.support.outbox import insert_outputs

_rows = iter(range(1, 10**9))


def add(
    store: SqlStore,
    endpoint_id: str,
    session_id: str,
    count: int,
    *,
    not_before: float = 0.0,
    attempts: int = 0,
) -> list[int]:
    """``count`` pending outputs of one session (straight into the table: quick for many);
    returns their ids, in order."""
    now = time.time()
    rows = [
        {
            "delivery_id": f"msg_due{next(_rows):09d}",
            "endpoint_id": endpoint_id,
            "session_id": session_id,
            "message_id": None,
            "body": '{"n": 1}',
            "status": "pending",
            "attempts": attempts,
            "not_before": not_before,
            "created_at": now,
            "partition": 0,
        }
        for _ in range(count)
    ]
    with store.engine.begin() as conn:
        return insert_outputs(conn, rows)


# PostgreSQL: pages of the outbox and its indexes the backend has read so far (from shared
# buffers or not). Pages, not rows: an index scan counts only the entries it returns, so a
# walk over a whole index that returns one entry shows in its pages alone.
PAGES_READ = (
    "SELECT COALESCE(SUM(pg_stat_get_xact_blocks_fetched(oid)), 0) FROM pg_class "
    "WHERE oid = 'outbox'::regclass "
    "OR oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = 'outbox'::regclass)"
)
# PostgreSQL: index scans started on the outbox (each seek of a loose index scan is one).
INDEX_SCANS = (
    "SELECT COALESCE(SUM(idx_scan), 0) FROM pg_stat_xact_user_tables WHERE relname = 'outbox'"
)


@contextmanager
def counting_work(engine: sa.Engine, pg_stat: str | None = None) -> Iterator[list[int]]:
    """Counts the database's work for the statements run inside the block: on SQLite the
    virtual machine steps (a progress handler every 10 of them), on PostgreSQL the rows
    its scans read (``pg_stat_xact_user_tables``: heap rows fetched through an index plus
    rows read by sequential scans). A deterministic count, not a time. The statements must
    run on one connection (as one ``DeliveryStore`` read does). ``pg_stat``: another
    PostgreSQL counter to read instead (one number, e.g. ``PAGES_READ``)."""
    work = [0]
    if engine.dialect.name == "sqlite":

        def tick() -> int:
            work[0] += 1
            return 0

        def on_checkout(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
            dbapi_conn.set_progress_handler(tick, 10)

        def on_checkin(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.set_progress_handler(None, 10)

        sa.event.listen(engine, "checkout", on_checkout)
        sa.event.listen(engine, "checkin", on_checkin)
        try:
            yield work
        finally:
            sa.event.remove(engine, "checkout", on_checkout)
            sa.event.remove(engine, "checkin", on_checkin)
        return
    stat = pg_stat or (
        "SELECT COALESCE(SUM(COALESCE(idx_tup_fetch, 0) + COALESCE(seq_tup_read, 0)), 0) "
        "FROM pg_stat_xact_user_tables WHERE relname = 'outbox'"
    )
    # The view also shows the backend's counts not yet reported (earlier transactions):
    # the work is the difference between before the first statement and after the last.
    first: list[int] = []

    def reading(cursor: Any) -> int:
        with cursor.connection.cursor() as own:
            own.execute(stat)
            return int(own.fetchone()[0])

    def before(_conn: Any, cursor: Any, *_args: Any) -> None:
        if not first:
            first.append(reading(cursor))

    def after(_conn: Any, cursor: Any, *_args: Any) -> None:
        work[0] = reading(cursor) - first[0]

    sa.event.listen(engine, "before_cursor_execute", before)
    sa.event.listen(engine, "after_cursor_execute", after)
    try:
        yield work
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)
        sa.event.remove(engine, "after_cursor_execute", after)


async def test_due_outputs_are_session_heads_and_what_follows_a_due_head(
    store: SqlStore,
) -> None:
    """A session whose head waits for its retry gives nothing; a due head (never attempted,
    or its retry time passed) gives itself and the due outputs behind it, up to a later
    one waiting for its retry; another endpoint's outputs are never read; ``limit`` takes
    every due head before what follows them."""
    now = time.time()
    ds = DeliveryStore(store)
    waiting = add(store, "e1", "w", 1, not_before=now + 3600, attempts=1)
    add(store, "e1", "w", 5)
    fresh = add(store, "e1", "f", 3)
    retried = add(store, "e1", "r", 1, not_before=now - 1, attempts=2)
    behind_retried = add(store, "e1", "r", 1)
    blocked = add(store, "e1", "b", 1)
    add(store, "e1", "b", 1, not_before=now + 3600, attempts=1)  # replayed before it
    add(store, "e1", "b", 1)
    add(store, "other", "f", 4)
    assert waiting

    ids = await ds.due_ids("e1", now, 100)
    assert sorted(ids) == sorted(fresh + retried + behind_retried + blocked)
    heads = await ds.due_ids("e1", now, 3)
    assert sorted(heads) == sorted([fresh[0], retried[0], blocked[0]])


async def test_a_refill_does_not_read_the_outputs_behind_a_waiting_head(
    store: SqlStore,
) -> None:
    """With thousands of never-attempted outputs queued behind a head waiting for its retry
    (a receiver down for long), reading the endpoint's due outputs takes the one due head
    of another session, and the database does no more work for 3,000 outputs waiting
    behind the head than for 30."""
    ds = DeliveryStore(store)
    now = time.time()

    async def work_with(behind: int) -> tuple[list[int], int]:
        endpoint = f"down{behind}"
        add(store, endpoint, "stuck", 1, not_before=now + 3600, attempts=3)
        add(store, endpoint, "stuck", behind)
        due = add(store, endpoint, "fine", 1)
        if store.engine.dialect.name == "postgresql":
            with store.engine.begin() as conn:  # as autovacuum would: fresh statistics
                conn.execute(sa.text("ANALYZE outbox"))
        await ds.due_ids(endpoint, now, 100)  # warm: statement caches, pages
        with counting_work(store.engine) as work:
            ids = await ds.due_ids(endpoint, now, 100)
        assert ids == due
        return ids, work[0]

    _, small = await work_with(30)
    _, large = await work_with(3000)
    assert small > 0
    assert large <= small + small // 2, (small, large)
