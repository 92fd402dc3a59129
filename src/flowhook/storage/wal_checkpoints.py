"""SQLite: copying the write-ahead log into the database on a thread of its own.

By default SQLite checkpoints inside a commit: the commit that takes the log past 1,000
pages (4 MiB) first copies them into the database file and syncs it, and only then
returns. With 100 KiB messages (each written as the message, its output and its
transcript entries) that is every ten or so messages, and every message queued behind
that commit waits for the copy: the commit's p99 was 11-15 ms against a p50 of 1.3 ms
(docs/performance.md, "A healthy endpoint next to ten dead ones").

Here a thread with a connection of its own runs a *passive* checkpoint soon after each
commit (at most every ``SPACING`` seconds). A passive checkpoint takes no lock that a
writer or a reader waits for; it copies what is committed while new commits go on. The
writer keeps SQLite's own automatic checkpoint: it then finds almost everything copied
already, so it is short, and it is what starts the log over from its beginning (a
passive checkpoint alone never does while writes keep coming, and the log would grow
without end). Nothing about durability changes: a commit is in the synced log before it
returns, as before.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading

import structlog

log = structlog.get_logger(__name__)

# Least time between two checkpoints (seconds). Measured with 3 x 100 KiB per commit
# every 10 ms: 0.05 halves the commit's p99 (11-15 -> 5.4 ms); 0.2 changes nothing.
SPACING = 0.05


class WalCheckpointer:
    """Runs ``PRAGMA wal_checkpoint(PASSIVE)`` on its own thread after commits."""

    def __init__(self, database: str, *, spacing: float = SPACING) -> None:
        self._database = database
        self._spacing = spacing
        self._committed = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="flowhook-checkpoint", daemon=True)
        self.checkpoints = 0  # completed (for tests)

    def start(self) -> None:
        if not self._thread.is_alive() and not self._stopping.is_set():
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._committed.set()
            self._thread.join(timeout=10)

    def committed(self) -> None:
        """A transaction committed (called by the writer thread): checkpoint soon."""
        self._committed.set()

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self._database, isolation_level=None)
        except sqlite3.Error as exc:
            log.warning("wal checkpoints: cannot open the database", error=str(exc))
            return
        try:
            conn.execute("PRAGMA busy_timeout=0")  # never wait: the next round tries again
            while True:
                self._committed.wait()
                if self._stopping.is_set():
                    return
                self._committed.clear()
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                except sqlite3.Error as exc:  # busy (another checkpoint runs), or gone
                    log.debug("wal checkpoint skipped", error=str(exc))
                if self._stopping.wait(self._spacing):
                    return
        finally:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
