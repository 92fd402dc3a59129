"""Divides the partitions among the live workers, through leases in the database.

Every ``lease_seconds / 3`` (and at once when told that partitions changed hands),
the coordinator heartbeats, renews its leases and counts the live workers. Each
worker aims at its fair share, ``ceil(PARTITIONS / live workers)``:

- below it, it claims free or expired partitions (``FOR UPDATE SKIP LOCKED``),
  first ending the database sessions of workers whose leases expired (a frozen
  process's open transaction would otherwise keep its rows locked);
- above it (a worker joined), it hands the extra ones back gracefully: they are
  revoked here first, so no new turn or delivery starts on them, the turns and POSTs
  in flight finish, and only then is the lease released for others to claim;
- a lease that no longer names this worker was lost (this process stalled past its
  expiry and another took it over): its work is dropped at once, and the fence at
  commit (``flowhook.storage.hotpath``) refuses any turn still running under it.

The heartbeat runs on a connection and thread of its own (``SqlStore.coordinate``),
so a backlog of reads never delays it, and nothing slow runs inline in the loop.
Ownership lapses on its own shortly before the leases renewed last would expire.

A process killed outright holds its leases until they expire; then the others
claim its partitions and finish its pending messages and outputs.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

from flowhook.cluster import leases
from flowhook.cluster.ownership import Ownership
from flowhook.cluster.partitions import PARTITIONS
from flowhook.errors import StorageError
from flowhook.storage.store import SqlStore

log = structlog.get_logger(__name__)

PartitionsHook = Callable[[list[int]], Coroutine[Any, Any, None]]
# Ownership lapses this share of the lease before the database's expiry: the process
# stops starting work on its partitions before anyone else may claim them.
SAFETY_SHARE = 0.2


class Coordinator:
    def __init__(
        self,
        store: SqlStore,
        ownership: Ownership,
        worker: leases.Worker,
        *,
        lease_seconds: float,
        on_acquired: PartitionsHook,
        on_released: PartitionsHook,
    ) -> None:
        self._store = store
        self._ownership = ownership
        self._worker = worker
        self._lease_seconds = lease_seconds
        self._on_acquired = on_acquired
        self._on_released = on_released
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._draining: set[int] = set()  # revoked here, lease still held until work let go
        self._stopping = False
        self._warned_terminate = False
        self.lost = 0  # partitions whose lease was lost (metrics)
        self.ticks = 0

    @property
    def worker_id(self) -> str:
        return self._worker.id

    async def start(self) -> None:
        freed = await self._store.coordinate(
            lambda c: leases.reap_local(c, self._worker, leases.pid_alive)
        )
        if freed:
            log.info("cluster.reaped_dead_local_worker", leases=freed)
        await self.tick()
        self._task = asyncio.get_running_loop().create_task(self._run())

    def wake(self) -> None:
        """Partitions changed hands somewhere: look again now, not at the next tick."""
        self._wake.set()

    async def stop(self) -> None:
        """Let go of every partition's work (heartbeating on meanwhile, so the leases do
        not lapse into a takeover), then hand all leases back and leave."""
        self._stopping = True
        owned = self._ownership.owned()
        self._ownership.revoke(owned)
        self._draining.update(owned)
        await self._on_released(owned)
        for pending in list(self._background):
            with contextlib.suppress(Exception):
                await pending
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        try:
            await self._store.coordinate(lambda c: leases.leave(c, self._worker.id))
        except StorageError as exc:  # they expire by themselves
            log.warning("cluster.leave_failed", error=str(exc))

    async def _run(self) -> None:
        interval = self._lease_seconds / 3
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)
            self._wake.clear()
            try:
                await self.tick()
            except StorageError as exc:
                log.warning("cluster.heartbeat_failed", error=str(exc))
            except Exception:
                log.exception("cluster.tick_crashed")

    async def tick(self) -> None:
        started = time.monotonic()
        keep = sorted(set(self._ownership.owned()) | self._draining)
        tick = await self._store.coordinate(
            lambda c: leases.heartbeat(c, self._worker, self._lease_seconds, keep)
        )
        self.ticks += 1
        lapsed = self._ownership.lapsed()
        self._ownership.valid_until(started + self._lease_seconds * (1 - SAFETY_SHARE))
        lost = [p for p in self._ownership.owned() if p not in tick.held]
        if lost:
            self._drop(lost, reason="lease taken over")
        if lapsed and len(self._ownership):
            # Renewed after a lapse: the runner and the dispatcher let go of these
            # partitions meanwhile. Take them up again as if just claimed (owed outputs
            # first), so order holds.
            kept = {p: tick.held[p] for p in self._ownership.owned()}
            self._ownership.grant(kept, opening=True)
            log.warning("cluster.ownership_resumed", partitions=len(kept))
            self._in_background(self._on_acquired(sorted(kept)))
        if self._worker.role == "ingress" or self._stopping:
            return  # an ingress heartbeats only, so the status view lists it
        owned = len(self._ownership)
        fair = math.ceil(PARTITIONS / tick.live_workers)
        if owned < fair and not self._draining:
            await self._end_stalled_sessions()
            claimed = await self._store.coordinate(
                lambda c: leases.claim(c, self._worker.id, self._lease_seconds, fair - owned)
            )
            if claimed:
                self._ownership.grant(claimed, opening=True)
                log.info("cluster.claimed", partitions=len(claimed), owned=len(self._ownership))
                self._in_background(self._on_acquired(sorted(claimed)))
        elif owned > fair:
            extra = self._ownership.owned()[fair:]
            self._ownership.revoke(extra)
            self._draining.update(extra)
            self._in_background(self._release(extra))

    async def _end_stalled_sessions(self) -> None:
        try:
            ended = await self._store.coordinate(
                lambda c: leases.end_stalled_sessions(c, self._worker.id)
            )
        except StorageError as exc:  # e.g. not allowed to signal them: claims skip locked rows
            if not self._warned_terminate:
                self._warned_terminate = True
                log.warning("cluster.cannot_end_stalled_sessions", error=str(exc))
            return
        if ended:
            log.warning("cluster.ended_stalled_sessions", sessions=ended)

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _release(self, partitions: list[int]) -> None:
        try:
            await self._on_released(partitions)
            await self._store.coordinate(lambda c: leases.release(c, self._worker.id, partitions))
            log.info("cluster.handed_back", partitions=len(partitions))
        except StorageError as exc:  # the next heartbeat releases them (not in keep)
            log.warning("cluster.release_failed", error=str(exc))
        finally:
            self._draining.difference_update(partitions)

    def _drop(self, partitions: list[int], *, reason: str) -> None:
        """The leases are gone: stop their work here (in the background, the heartbeat
        must go on for the partitions still held)."""
        self._ownership.revoke(partitions)
        self.lost += len(partitions)
        log.warning("cluster.lease_lost", partitions=len(partitions), reason=reason)
        self._in_background(self._on_released(partitions))
