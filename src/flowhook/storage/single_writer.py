"""One server per SQLite database: an OS lock on a file next to it.

SQLite gives flowhook one writer, and the server keeps each session's order in memory:
a second server on the same database would run turns and deliveries of the same
sessions at the same time, out of order. So ``flowhook serve`` on SQLite takes an
exclusive ``flock`` on ``<database>.lock`` (holding the pid and host of the server) and
keeps it for its lifetime. The operating system releases it when the process ends,
however it ends (a crash or ``kill -9`` included), so a stale lock never blocks a
restart. PostgreSQL needs none: several processes coordinate through the database.
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path
from typing import IO

from sqlalchemy.engine import make_url

from flowhook.errors import ConfigError
from flowhook.storage.engine import backend_name, normalise_url


class WriterLock:
    """Held while the server runs; ``release`` (or the process ending) lets it go."""

    def __init__(self, handle: IO[str] | None) -> None:
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing the descriptor drops the flock
            self._handle = None


def lock_path(database_url: str) -> Path | None:
    """Where the lock of this database lives; None when it needs none (PostgreSQL, or an
    in-memory SQLite database)."""
    if backend_name(database_url) != "sqlite":
        return None
    database = make_url(normalise_url(database_url)).database
    if not database or database == ":memory:":
        return None
    return Path(database).with_name(Path(database).name + ".lock")


def acquire(database_url: str) -> WriterLock:
    """Take the lock, or raise ConfigError naming the server that holds it."""
    path = lock_path(database_url)
    if path is None:
        return WriterLock(None)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")  # noqa: SIM115 - kept open for the server's lifetime
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        database = path.with_suffix("")
        raise ConfigError(
            f"another flowhook server ({holder}) is running on this database ({database}); "
            "with SQLite only one may run. Stop it first, or use PostgreSQL for several "
            "processes"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
    handle.flush()
    return WriterLock(handle)
