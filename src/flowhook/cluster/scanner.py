"""Feeds the session runner from the inbox, for the partitions this process owns.

With several processes, a message is committed by whichever process the client
reached and run by the owner of its session's partition. Every accepting transaction
sends a NOTIFY naming each message it committed (``partition:id``), and PostgreSQL
delivers the notifications of different transactions in the order they committed.
That order is what the owner runs them in:

- a message accepted here waits, in memory, for its own notification: by then every
  message committed before it has been announced too, so none is overtaken. It is not
  read back;
- a message another process accepted is read by id (all of one wake-up in one read);
- a partition with a scan pending takes no message this way: the scan, whose read
  starts later, submits them all in id order; one notified while its partition is
  being scanned waits for the scan to finish, then goes in order after what it found.

Scans remain for what notifications cannot say: a partition just claimed, a
notification missed (the LISTEN connection was lost, or one did not arrive within
``LOCAL_NOTIFY_SECONDS``), and a periodic safety net every ``scan_seconds`` (every
``FULL_SCAN_EVERY``-th of them reads everything; the others, like all scans after a
partition's first, read only what committed since). Scans are coalesced: however many
wake-ups arrive while one runs, one more follows it.

Messages are read in id order. Two messages of a session where the second was sent
after the first was answered 202 have ids in that order (the sequence value is taken
after the first committed), and a scan that sees the second also sees the first: so
turns run in arrival order.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence

import structlog

from flowhook.cluster.ownership import Ownership
from flowhook.cluster.partitions import partition_of
from flowhook.sessions.runner import SessionRunner
from flowhook.storage.records import InboundMessage
from flowhook.storage.store import ScanMark, SqlStore

log = structlog.get_logger(__name__)

PAGE = 2000
FULL_SCAN_EVERY = 15  # periodic scans; the others read only what is new
# How long to wait for the runner to drain below its backlog limit before reading more.
BACKLOG_PAUSE_SECONDS = 0.05
# A message accepted here whose notification has not arrived after this long (the
# LISTEN connection was (re)established just after its commit): its partition is scanned.
LOCAL_NOTIFY_SECONDS = 1.0
# A notification of a message accepted here may come before the accepting request has
# handed the message over (two wake-ups of the loop, in either order): wait this long
# for it, then read it back like any other.
OWN_HANDOVER_SECONDS = 0.05
# Ids notified lately, so a hand-over that comes after its notification is not kept
# waiting for another one.
RECENT_IDS = 20_000


class InboxScanner:
    def __init__(
        self,
        store: SqlStore,
        runner: SessionRunner,
        ownership: Ownership,
        *,
        scan_seconds: float,
        max_backlog: int,
        worker_id: str | None = None,
    ) -> None:
        """``worker_id``: this process's, as the notifications of its own commits name it."""
        self._store = store
        self._worker_id = worker_id
        self._runner = runner
        self._ownership = ownership
        self._scan_seconds = scan_seconds
        self._max_backlog = max_backlog
        self._dirty: set[int] = set()
        self._scanning: set[int] = set()  # partitions of the scan running now
        self._marks: dict[int, ScanMark] = {}  # per partition: where its last full read stood
        self._wake = asyncio.Event()
        # Accepted here, in owned partitions, waiting for their own notification (with
        # when they were accepted), in acceptance order.
        self._local: dict[int, tuple[InboundMessage, float]] = {}
        # (partition, id, committed here) notified, in commit order
        self._feed: list[tuple[int, int, bool]] = []
        self._feed_wake = asyncio.Event()
        # Notified while their partition was being scanned: handed over after the scan.
        self._parked: list[tuple[int, int, InboundMessage | None]] = []
        self._handed_over = asyncio.Event()  # a message accepted here was handed over
        # ids notified lately, oldest first (an OrderedDict: docs/performance.md,
        # "Oldest-first tables")
        self._recent: OrderedDict[int, None] = OrderedDict()
        self._feeding = False
        self._quiet = asyncio.Event()  # nothing marked, waiting or fed, no scan running
        self._quiet.set()
        self._tasks: list[asyncio.Task[None]] = []
        self.scans = 0
        self.fed = 0  # messages handed to the runner from notifications

    def mark(self, partitions: Iterable[int]) -> None:
        """These partitions have new messages (or were just claimed): scan them soon."""
        owned = [p for p in partitions if self._ownership.runs_turns(p)]
        if owned:
            self._dirty.update(owned)
            self._quiet.clear()
            self._wake.set()

    def mark_all(self) -> None:
        self.mark(self._ownership.owned())

    def accepted(self, msg: InboundMessage) -> None:
        """A message committed here: if this process runs its partition, it waits for its
        own notification and then runs from memory (the owner elsewhere hears of it from
        that notification)."""
        if msg.id in self._recent:
            return  # notified already: taken from the inbox
        if self._ownership.runs_turns(partition_of(msg.endpoint_id, msg.session_id)):
            self._local[msg.id] = (msg, time.monotonic())
            self._quiet.clear()
            self._handed_over.set()

    def on_notify(self, payload: str) -> None:
        """A ``flowhook_inbox`` notification: the committing worker's id, ``|``, then
        ``partition:id`` of each message committed, comma-separated (a bare partition, from
        an older process: scan it)."""
        sender, _bar, entries = payload.rpartition("|")
        own = bool(sender) and sender == self._worker_id
        try:
            for entry in entries.split(","):
                part, sep, ident = entry.partition(":")
                if not part:
                    continue
                partition = int(part)
                if not sep:
                    self.mark((partition,))
                elif self._ownership.runs_turns(partition):
                    self._feed.append((partition, int(ident), own))
                else:
                    self._local.pop(int(ident), None)
        except ValueError:
            log.warning("cluster.bad_inbox_notification", payload=payload[:100])
        if self._feed:
            self._quiet.clear()
            self._feed_wake.set()
        else:
            self._settle_quiet()

    async def until_quiet(self) -> None:
        """Wait until every marked partition was scanned (what was accepted before the
        call has reached the runner)."""
        await self._quiet.wait()

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._scan_forever()),
            loop.create_task(self._feed_forever()),
            loop.create_task(self._unannounced_forever()),
        ]
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

    def _settle_quiet(self) -> None:
        if not (self._dirty or self._scanning or self._local or self._feed or self._feeding):
            self._quiet.set()

    async def _scan_forever(self) -> None:
        delay = 0.1
        while True:
            await self._wake.wait()
            self._wake.clear()
            partitions = sorted(p for p in self._dirty if self._ownership.runs_turns(p))
            self._dirty.clear()
            if not partitions:
                self._settle_quiet()
                continue
            # Messages accepted here before this scan's read are committed: it takes them.
            covered = [
                i
                for i, (m, _at) in self._local.items()
                if partition_of(m.endpoint_id, m.session_id) in partitions
            ]
            self._scanning = set(partitions)
            try:
                await self.scan(partitions)
                delay = 0.1
                for i in covered:
                    self._local.pop(i, None)
                # Notified while the scan ran: after what it handed over, in order (more
                # are parked meanwhile, until none is left).
                while self._parked:
                    parked, self._parked = self._parked, []
                    self.fed += await self._submit(parked)
            except Exception as exc:  # storage away (or a bug): never stop scanning
                log.warning("cluster.scan_failed", error=str(exc), retry_in=delay)
                self._dirty.update(partitions)  # the next scan reads the parked ones too
                self._parked = []
                self._scanning = set()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                self._wake.set()
            finally:
                self._scanning = set()
            self._settle_quiet()

    async def _feed_forever(self) -> None:
        while True:
            await self._feed_wake.wait()
            self._feed_wake.clear()
            batch, self._feed = self._feed, []
            if not batch:
                continue
            self._feeding = True
            try:
                self.fed += await self._take_notified(batch)
            except Exception as exc:  # storage away (or a bug): the scans take them
                log.warning("cluster.feed_failed", error=str(exc))
                self.mark(p for p, _i, _own in batch)
            finally:
                self._feeding = False
            self._settle_quiet()

    async def _take_notified(self, batch: list[tuple[int, int, bool]]) -> int:
        """Hand the runner the notified messages, in notification (commit) order. One of
        a partition with a scan pending is left to that scan (it reads after the commit);
        one of a partition being scanned is parked, and handed over in order right after
        the scan, as is every later one of that partition until then."""
        await self._await_handover([i for _p, i, own in batch if own])
        # From here on, a late hand-over of these is not kept: they are taken below.
        for _p, message_id, _own in batch:
            self._recent[message_id] = None
        while len(self._recent) > RECENT_IDS:
            self._recent.popitem(last=False)
        wanted: list[tuple[int, int, InboundMessage | None]] = []
        for partition, message_id, _own in batch:
            local = self._local.pop(message_id, None)
            msg = None if local is None else local[0]
            if partition in self._scanning:
                self._parked.append((partition, message_id, msg))
            elif partition not in self._dirty:  # a dirty one's scan reads after this commit
                wanted.append((partition, message_id, msg))
        return await self._submit(wanted)

    async def _submit(self, entries: list[tuple[int, int, InboundMessage | None]]) -> int:
        wanted = [
            (i, msg)
            for p, i, msg in entries
            if self._ownership.runs_turns(p) and not self._runner.holds(i)
        ]
        if not wanted:
            return 0
        return await self._runner.submit_fresh(functools.partial(self._read_notified, wanted))

    async def _await_handover(self, own: list[int]) -> None:
        """Give the requests that committed these messages here a moment to hand them
        over, so they run from memory."""
        deadline = time.monotonic() + OWN_HANDOVER_SECONDS
        while any(i not in self._local and not self._runner.holds(i) for i in own):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._handed_over.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._handed_over.wait(), left)

    async def _read_notified(
        self, wanted: list[tuple[int, InboundMessage | None]]
    ) -> list[InboundMessage]:
        """The messages in order: from memory if accepted here, else read (those still
        pending)."""
        missing = [i for i, msg in wanted if msg is None]
        read = {}
        if missing:
            read = {m.id: m for m in await self._store.pending_messages_by_ids(missing)}
        out = []
        for message_id, msg in wanted:
            found = msg if msg is not None else read.get(message_id)
            if found is not None:
                out.append(found)
        return out

    async def _unannounced_forever(self) -> None:
        """Scan the partitions of messages accepted here whose notification is overdue
        (sent before the LISTEN connection was up): their scan takes them."""
        while True:
            await asyncio.sleep(LOCAL_NOTIFY_SECONDS / 2)
            due = time.monotonic() - LOCAL_NOTIFY_SECONDS
            late = []
            for msg, at in self._local.values():
                if at > due:
                    break  # acceptance order: the rest are younger
                late.append(partition_of(msg.endpoint_id, msg.session_id))
            if late:
                self.mark(late)

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
