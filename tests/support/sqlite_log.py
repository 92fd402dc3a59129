"""A SQLite store whose write-ahead log is never copied into the database, and the size
of that log in pages: what a commit wrote can be read off the log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from flowhook.storage import migrate
from flowhook.storage.store import SqlStore


def log_pages(database: Path) -> int:
    """Pages (4 KiB) in the database's write-ahead log."""
    return (database.parent / (database.name + "-wal")).stat().st_size // 4096


@asynccontextmanager
async def store_without_checkpoints(database: Path) -> AsyncIterator[SqlStore]:
    """A migrated, started store on ``database`` with no checkpoint thread."""
    url = f"sqlite:///{database}"
    migrate.upgrade(url)
    store = SqlStore(url, wal_checkpoints=False)
    store.start()
    try:
        yield store
    finally:
        store.close()
