"""The configuration generation is read on a thread of its own: every delivery attempt
waits for that read, so it must not queue behind the store's other reads (outbox walks,
bodies read back), however many of those are waiting."""

from __future__ import annotations

import asyncio
import threading

from sqlalchemy import Connection

from flowhook.storage.store import SqlStore


async def test_generation_read_does_not_wait_behind_busy_readers(store: SqlStore) -> None:
    """With every read thread held by a read that cannot finish yet, and more reads queued
    behind them, ``config_generation`` still answers; the held reads then finish."""
    release = threading.Event()

    def held_read(conn: Connection) -> int:
        release.wait(timeout=30)
        return int(conn.exec_driver_sql("SELECT 1").scalar_one())

    # Twice the read threads: all of them busy, and as many reads queued behind.
    held = [asyncio.ensure_future(store._read(held_read)) for _ in range(2 * store.read_threads)]
    try:
        await asyncio.sleep(0.05)
        assert not any(task.done() for task in held)
        generation = await asyncio.wait_for(store.config_generation(), timeout=10)
        assert isinstance(generation, int)
        assert not any(task.done() for task in held)  # it did not overtake by luck
    finally:
        release.set()
    assert await asyncio.gather(*held) == [1] * len(held)
