"""The transcript purge finds old entries by time. It runs on the writer, so its work must
not grow with the entries an endpoint keeps: with SQLite's choice of the endpoint's index
it read every kept entry to its last column, past the text (every overflow page of a
large one), each purge."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, insert

from flowhook.storage import migrate
from flowhook.storage import schema as t
from flowhook.storage.insights import _purge
from flowhook.storage.store import SqlStore


def _entries(endpoint_id: str, count: int, at: float, text: str) -> list[dict[str, Any]]:
    return [
        {
            "endpoint_id": endpoint_id,
            "session_id": f"s{n}",
            "user_id": "u",
            "direction": "in",
            "source": "user",
            "text": text,
            "trace_id": f"t{n}",
            "at": at,
        }
        for n in range(count)
    ]


def _steps_of_purge(conn: Connection, endpoint_id: str, cutoff: float) -> tuple[int, int]:
    """(rows deleted, SQLite virtual machine steps the purge took, in hundreds)."""
    driver: Any = conn.connection.driver_connection
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    driver.set_progress_handler(count, 100)
    try:
        [deleted] = _purge(conn, [[(endpoint_id, cutoff)]])
    finally:
        driver.set_progress_handler(None, 0)
    return deleted, steps[0]


async def test_purge_work_does_not_grow_with_the_entries_kept(tmp_path: Path) -> None:
    """SQLite: purging an endpoint with 10 old entries and 400 recent ones of 100 KiB
    deletes the 10 and takes no more steps than purging it with the 10 old ones alone."""
    url = f"sqlite:///{tmp_path / 'flowhook.db'}"
    migrate.upgrade(url)
    store = SqlStore(url, wal_checkpoints=False)
    now = time.time()
    big = "x" * 100 * 1024
    try:
        with store.engine.begin() as conn:
            conn.execute(insert(t.transcripts), _entries("few", 10, now - 100, "old"))
            conn.execute(insert(t.transcripts), _entries("many", 10, now - 100, "old"))
            conn.execute(insert(t.transcripts), _entries("many", 400, now, big))
        with store.engine.begin() as conn:
            alone = _steps_of_purge(conn, "few", now - 50)
            kept = _steps_of_purge(conn, "many", now - 50)
        assert alone[0] == kept[0] == 10
        assert kept[1] <= alone[1] + 3, (alone, kept)
        with store.engine.connect() as conn:
            left = conn.execute(t.transcripts.select()).all()
        assert len(left) == 400
    finally:
        store.close()
