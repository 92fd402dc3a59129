"""Feeds the session runner from the inbox, for the partitions this process owns.

With several processes, a message is committed by whichever process the client
reached and run by the owner of its session's partition. The owner learns of it
from a NOTIFY (sent in the accepting transaction), from its own ingress, when it
claims a partition, or, as a safety net for a missed notification, from a scan every
``scan_seconds`` (every ``FULL_SCAN_EVERY``-th of them reads everything; the others,
like all scans after a partition's first, read only what committed since). Scans are
coalesced: however many wake-ups arrive while one runs, one more follows it.

Messages are read in id order. Two messages of a session where the second was sent
after the first was answered 202 have ids in that order (the sequence value is taken
after the first committed), and a scan that sees the second also sees the first: so
turns run in arrival order.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Iterable, Sequence

import structlog

from flowhook.cluster.ownership import Ownership
from flowhook.sessions.runner import SessionRunner
from flowhook.storage.store import ScanMark, SqlStore

log = structlog.get_logger(__name__)

PAGE = 2000
FULL_SCAN_EVERY = 15  # periodic scans; the others read only what is new
# How long to wait for the runner to drain below its backlog limit before reading more.
BACKLOG_PAUSE_SECONDS = 0.05


class InboxScanner:
    def __init__(
        self,
        store: SqlStore,
        runner: SessionRunner,
        ownership: Ownership,
        *,
        scan_seconds: float,
        max_backlog: int,
    ) -> None:
        self._store = store
        self._runner = runner
        self._ownership = ownership
        self._scan_seconds = scan_seconds
        self._max_backlog = max_backlog
        self._dirty: set[int] = set()
        self._marks: dict[int, ScanMark] = {}  # per partition: where its last full read stood
        self._wake = asyncio.Event()
        self._quiet = asyncio.Event()  # nothing marked, no scan running
        self._quiet.set()
        self._tasks: list[asyncio.Task[None]] = []
        self.scans = 0

    def mark(self, partitions: Iterable[int]) -> None:
        """These partitions have new messages (or were just claimed): scan them soon."""
        owned = [p for p in partitions if self._ownership.runs_turns(p)]
        if owned:
            self._dirty.update(owned)
            self._quiet.clear()
            self._wake.set()

    def mark_all(self) -> None:
        self.mark(self._ownership.owned())

    def on_notify(self, payload: str) -> None:
        """A ``flowhook_inbox`` notification: the partitions, comma-separated."""
        try:
            self.mark(int(p) for p in payload.split(",") if p)
        except ValueError:
            log.warning("cluster.bad_inbox_notification", payload=payload[:100])

    async def until_quiet(self) -> None:
        """Wait until every marked partition was scanned (what was accepted before the
        call has reached the runner)."""
        await self._quiet.wait()

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._scan_forever())]
        if self._scan_seconds > 0:
            self._tasks.append(loop.create_task(self._tick_forever()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _tick_forever(self) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(self._scan_seconds)
            ticks += 1
            if ticks % FULL_SCAN_EVERY == 0:
                self._marks.clear()  # belt and braces: now and then, read everything
            self.mark_all()

    async def _scan_forever(self) -> None:
        delay = 0.1
        while True:
            await self._wake.wait()
            self._wake.clear()
            partitions = sorted(p for p in self._dirty if self._ownership.runs_turns(p))
            self._dirty.clear()
            if not partitions:
                self._quiet.set()
                continue
            try:
                await self.scan(partitions)
                delay = 0.1
                if not self._dirty:
                    self._quiet.set()
            except Exception as exc:  # storage away (or a bug): never stop scanning
                log.warning("cluster.scan_failed", error=str(exc), retry_in=delay)
                self._dirty.update(partitions)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                self._wake.set()

    async def scan(self, partitions: Sequence[int]) -> int:
        """Hand the runner every pending message of these partitions it does not hold.

        Ids first, and after a partition's first scan only those that may have committed
        since (``SqlStore.pending_message_ids``): under load most pending messages are
        queued here already, and reading them all again on every wake-up would cost more
        than the turns. Only the messages not held here are read in full."""
        taken = 0
        marks = [self._marks.get(p) for p in partitions]
        since = None
        if all(m is not None for m in marks):
            since = ScanMark(
                max_id=min(m.max_id for m in marks if m is not None),
                xmin=min(m.xmin for m in marks if m is not None),
            )
        while True:
            # Polled, not awaited on an event: the runner drains in well under a pause.
            while self._runner.backlog >= self._max_backlog:  # noqa: ASYNC110
                await asyncio.sleep(BACKLOG_PAUSE_SECONDS)
            limit = PAGE + self._runner.backlog
            ids, mark = await self._store.pending_message_ids(partitions, limit, since)
            missing = [i for i in ids if not self._runner.holds(i)][:PAGE]
            if missing:
                read = functools.partial(self._store.pending_messages_by_ids, missing)
                taken += await self._runner.submit_fresh(read)
            if len(missing) < PAGE:
                # This read saw every pending message and all it lacked is queued now:
                # from here on, only what commits later needs reading.
                if len(ids) < limit and mark is not None:
                    for p in partitions:
                        self._marks[p] = mark
                break
        self.scans += 1
        return taken

    def forget(self, partitions: Iterable[int]) -> None:
        """Scan these partitions in full next time (just claimed, or their queued
        messages were let go)."""
        for p in partitions:
            self._marks.pop(p, None)
