"""Divides the partitions among the live workers, through leases in the database.

Every ``lease_seconds / 3`` (and at once when told that partitions changed hands),
the coordinator heartbeats, renews its leases and counts the live workers. Each
worker aims at its fair share, ``ceil(PARTITIONS / live workers)``:

- below it, it claims free or expired partitions (``FOR UPDATE SKIP LOCKED``);
- above it (a worker joined), it hands the extra ones back gracefully: they are
  revoked here first, so no new turn or delivery starts on them, the turns and POSTs
  in flight finish, and only then is the lease released for others to claim;
- a lease that no longer names this worker was lost (this process stalled past its
  expiry and another took it over): its work is dropped at once, and the fence at
  commit (``flowhook.storage.hotpath``) refuses any turn still running under it.

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
        self._handing_back: set[asyncio.Task[None]] = set()
        self._draining: set[int] = set()  # revoked here, lease still held until work let go
        # Until when (monotonic) the leases renewed last are certainly still ours.
        self._valid_until = 0.0
        self.lost = 0  # partitions whose lease was lost (metrics)
        self.ticks = 0

    @property
    def worker_id(self) -> str:
        return self._worker.id

    async def start(self) -> None:
        freed = await self._store.transact(
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
        """Let go of every partition's work, then hand all leases back and leave."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        owned = self._ownership.owned()
        self._ownership.revoke(owned)
        await self._on_released(owned)
        for pending in list(self._handing_back):
            with contextlib.suppress(Exception):
                await pending
        try:
            await self._store.transact(lambda c: leases.leave(c, self._worker.id))
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
                if time.monotonic() >= self._valid_until:
                    await self._drop(self._ownership.owned(), reason="heartbeat failing")
            except Exception:
                log.exception("cluster.tick_crashed")

    async def tick(self) -> None:
        started = time.monotonic()
        tick = await self._store.transact(
            lambda c: leases.heartbeat(c, self._worker, self._lease_seconds)
        )
        self.ticks += 1
        self._valid_until = started + self._lease_seconds
        lost = [p for p in self._ownership.owned() if p not in tick.held]
        if lost:
            await self._drop(lost, reason="lease taken over")
        # Held in the database but not owned here: the ones being handed back (worker ids
        # are new per process, so no earlier run of this worker left leases behind).
        if self._worker.role == "ingress":
            return  # heartbeats only, so the status view lists it
        owned = len(self._ownership)
        fair = math.ceil(PARTITIONS / tick.live_workers)
        if owned < fair and not self._draining:
            claimed = await self._store.transact(
                lambda c: leases.claim(c, self._worker.id, self._lease_seconds, fair - owned)
            )
            if claimed:
                self._ownership.grant(claimed)
                log.info("cluster.claimed", partitions=len(claimed), owned=len(self._ownership))
                await self._on_acquired(sorted(claimed))
        elif owned > fair:
            extra = self._ownership.owned()[fair:]
            self._hand_back(extra)

    def _hand_back(self, partitions: list[int]) -> None:
        self._ownership.revoke(partitions)
        self._draining.update(partitions)
        task = asyncio.get_running_loop().create_task(self._release(partitions))
        self._handing_back.add(task)
        task.add_done_callback(self._handing_back.discard)

    async def _release(self, partitions: list[int]) -> None:
        try:
            await self._on_released(partitions)
            await self._store.transact(lambda c: leases.release(c, self._worker.id, partitions))
            log.info("cluster.handed_back", partitions=len(partitions))
        except StorageError as exc:  # the leases expire by themselves
            log.warning("cluster.release_failed", error=str(exc))
        finally:
            self._draining.difference_update(partitions)

    async def _drop(self, partitions: list[int], *, reason: str) -> None:
        """The leases are gone: stop their work here (in the background, the heartbeat
        must go on for the partitions still held)."""
        self._ownership.revoke(partitions)
        self.lost += len(partitions)
        log.warning("cluster.lease_lost", partitions=len(partitions), reason=reason)
        task = asyncio.get_running_loop().create_task(self._on_released(partitions))
        self._handing_back.add(task)
        task.add_done_callback(self._handing_back.discard)

    async def view(self) -> list[dict[str, object]]:
        return await self._store.transact(lambda c: leases.cluster_view(c, self._lease_seconds))
