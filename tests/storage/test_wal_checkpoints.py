"""SQLite's write-ahead log is copied into the database by a thread of its own
(``flowhook.storage.wal_checkpoints``), soon after commits, while the writer keeps SQLite's
own checkpoint that starts the log over: the log stays bounded under steady writes of
large messages, everything committed is in the database file once the store closes, and
a checkpoint that cannot run is simply tried after the next commit."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from pathlib import Path

import pytest

from flowhook.storage import migrate
from flowhook.storage.store import SqlStore
from flowhook.storage.wal_checkpoints import WalCheckpointer
from tests.storage.test_store import endpoint, message

LARGE_TEXT = "x" * 100_000


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "flowhook.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


async def test_the_log_is_copied_off_the_writer_and_stays_bounded(db_path: Path) -> None:
    """600 messages of 100 KiB, a commit every few ms (60 MiB through the log): the
    checkpoint thread runs after commits, the log never grows past a few times SQLite's
    1,000-page mark, and every message is in the database after the store closed."""
    store = SqlStore(f"sqlite:///{db_path}")
    store.start()
    wal = f"{db_path}-wal"
    largest = 0
    try:
        await store.create_endpoint(endpoint())
        for batch in range(60):
            await asyncio.gather(
                *(
                    store.accept_message(message(session=f"s{batch}-{i}", text=LARGE_TEXT))
                    for i in range(10)
                )
            )
            largest = max(largest, wal_size(wal))
            await asyncio.sleep(0.005)
        checkpointer = store._checkpoints
        assert checkpointer is not None
        assert checkpointer.checkpoints > 0
    finally:
        store.close()
    assert largest < 16 * 1024 * 1024, largest
    with sqlite3.connect(db_path) as conn:
        (count,) = conn.execute("SELECT count(*) FROM messages").fetchone()
    assert count == 600


def test_the_thread_stops_and_a_busy_database_is_tried_again_later(db_path: Path) -> None:
    """A checkpoint that cannot run (another connection holds an exclusive lock) is
    skipped without failing the thread; the next commit's checkpoint runs; stop ends it."""
    checkpointer = WalCheckpointer(str(db_path), spacing=0.01)
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("PRAGMA journal_mode=WAL")
    blocker.execute("BEGIN EXCLUSIVE")
    checkpointer.start()
    try:
        checkpointer.committed()
        for _ in range(100):
            if not checkpointer._committed.is_set():
                break
            time.sleep(0.01)
        blocker.execute("ROLLBACK")
        checkpointer.committed()
        for _ in range(200):
            if checkpointer.checkpoints:
                break
            time.sleep(0.01)
        assert checkpointer.checkpoints >= 1
    finally:
        checkpointer.stop()
        blocker.close()
    assert not checkpointer._thread.is_alive()


def wal_size(path: str) -> int:
    return os.path.getsize(path) if os.path.exists(path) else 0
