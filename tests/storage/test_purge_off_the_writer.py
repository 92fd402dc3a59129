"""The history purge holds the group-commit writer only for the rows it deletes."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from flowhook.storage import housekeeping, migrate
from flowhook.storage import schema as t
from flowhook.storage.store import SqlStore
from tests.support.outbox import insert_outputs

_rows = itertools.count()


def add_finished(store: SqlStore, count: int, *, finished_at: float) -> None:
    """``count`` delivered outputs with 20 KiB bodies, straight into the table."""
    body = '{"text": "' + "x" * 20_000 + '"}'
    rows = [
        {
            "delivery_id": f"msg_purge{next(_rows):09d}",
            "endpoint_id": "e1",
            "session_id": f"s{n % 50}",
            "message_id": None,
            "body": body,
            "status": "delivered",
            "attempts": 1,
            "not_before": 0.0,
            "created_at": finished_at,
            "finished_at": finished_at,
            "partition": 0,
        }
        for n in range(count)
    ]
    with store.engine.begin() as conn:
        insert_outputs(conn, rows)


@contextmanager
def writer_steps(store: SqlStore) -> Iterator[list[int]]:
    """SQLite virtual-machine steps (one tick per 10) run on the writer's connection."""
    steps = [0]

    def tick() -> int:
        steps[0] += 1
        return 0

    raw = store.writer._connection().connection.driver_connection
    assert raw is not None
    raw.set_progress_handler(tick, 10)
    try:
        yield steps
    finally:
        raw.set_progress_handler(None, 10)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    """A SQLite store: the count is of SQLite's virtual-machine steps on the writer's
    connection (on PostgreSQL the scan ran in the writer's transaction the same way)."""
    url = f"sqlite:///{tmp_path / 'flowhook.db'}"
    migrate.upgrade(url)
    s = SqlStore(url)
    s.start()
    yield s
    s.close()


async def test_a_purge_with_little_to_delete_costs_the_writer_the_same_on_any_table(
    store: SqlStore,
) -> None:
    """With 100 or with 1,500 recent finished outputs (nothing old enough to go) and 5 old
    ones, the purge deletes exactly the 5 and the writer's work is the same: finding the
    candidates (a scan: finish times have no index) runs on a reader thread, so the
    per-message commits never wait behind it. Before, the scan ran inside the writer's
    transaction, its work growing with the table."""
    now = time.time()

    async def writer_work(recent: int) -> int:
        with store.engine.begin() as conn:
            conn.execute(sa.delete(t.outbox))
            conn.execute(sa.delete(t.outbox_bodies))
        add_finished(store, recent, finished_at=now)
        add_finished(store, 5, finished_at=now - 7200)
        with writer_steps(store) as steps:
            counts = await housekeeping.purge_history(store, now - 3600)
        assert counts["outbox"] == 5
        with store.engine.connect() as conn:
            left = conn.execute(sa.select(sa.func.count()).select_from(t.outbox)).scalar_one()
        assert left == recent
        return steps[0]

    small = await writer_work(100)
    large = await writer_work(1500)
    assert large <= small + small // 2 + 5, (small, large)
