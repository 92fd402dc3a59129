"""Keeps the running dispatcher in step with the outbox and the endpoint delivery switches.

The outbox holds every pending output; the dispatcher holds a bounded window of them.

- **Refill** (``on_backlog``): an endpoint whose outputs did not all fit in the window (or
  whose lanes were let go to wait for a retry) is *backlogged*; as its window drains, its
  next outputs are read from the outbox, oldest first, a session's never ahead of an
  earlier one still waiting for its retry. Once the outbox holds nothing of it beyond
  memory, the endpoint takes outputs straight from the session runner again.
- **410 Gone** (``on_gone``): the switch is stored, so it survives a restart and shows in
  the endpoint's view.
- **Switched on again or replayed** (``on_switch``, ``on_replayed``): the endpoint is
  refilled at once.
- **The sweep** (every ``delivery_sweep_seconds``, and once at start-up): reads the stored
  switches, then walks the endpoints that have pending outputs (one index seek each, with
  the earliest due time) and refills each one that has something due. That is how a
  retry's due time, a replay or a switch made by another process (the CLI) reach this
  server, and it picks up a lost in-memory hand-over. Each endpoint is read on its own,
  up to its own room in the window: no backlog of one endpoint hides another's work.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence

import structlog

from flowhook.delivery.bodies import without_body
from flowhook.delivery.dispatcher import Dispatcher
from flowhook.delivery.types import PendingDelivery
from flowhook.endpoints.service import PAUSED_REASON
from flowhook.errors import StorageError
from flowhook.metrics import Metrics
from flowhook.storage.deliveries import DeliveryStore
from flowhook.storage.records import ReplayResult

log = structlog.get_logger(__name__)

# Items one read hands over when the window is unbounded.
PAGE = 5_000
# New outputs of a backlogged endpoint are read after at most this long (batched: one
# read for many outputs, and a failing endpoint's backlog is not scanned per output).
ARRIVAL_DELAY = 0.05
# A failing endpoint (its last attempts all failed) is read at most this often between
# sweeps: each read walks its sessions, and its arrivals, let-gos and settled outputs
# would otherwise ask for a read after nearly every attempt, with nothing to gain (it
# sends on a few connections only). Replays, switches and the sweep read it at once.
FAILING_READ_SPACING = 1.0


class DeliveryControl:
    def __init__(
        self,
        deliveries: DeliveryStore,
        metrics: Metrics,
        *,
        sweep_seconds: float,
        owned: Callable[[], list[int]] | None = None,
    ) -> None:
        """``owned``: with several processes, the partitions whose outputs this process
        delivers (outbox reads look at those only)."""
        self._owned = owned
        self._deliveries = deliveries
        self._metrics = metrics
        self._sweep_seconds = sweep_seconds
        self._dispatcher: Dispatcher | None = None
        self._task: asyncio.Task[None] | None = None
        self._refiller: asyncio.Task[None] | None = None
        self._wanted: set[str] = set()  # endpoints to refill
        self._wake = asyncio.Event()
        self._busy: set[str] = set()  # endpoints being refilled now
        self._again: set[str] = set()  # ... and asked for again meanwhile
        self._arrived: set[str] = set()  # new outputs left in the outbox, not read yet
        self._arrival_timer: asyncio.TimerHandle | None = None
        # per backlogged endpoint: the session its last read stopped after (the next
        # read resumes there, so every session is served in turn)
        self._resume_after: dict[str, str] = {}
        # failing endpoints: when each was last read (loop time), and the timers of the
        # reads put off to keep them ``FAILING_READ_SPACING`` apart
        self._read_at: dict[str, float] = {}
        self._put_off: dict[str, asyncio.TimerHandle] = {}
        self.sweeps = 0  # completed sweeps (tests wait on it)

    def attach(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher

    @property
    def dispatcher(self) -> Dispatcher:
        assert self._dispatcher is not None, "attach() a dispatcher first"
        return self._dispatcher

    # -- life cycle -----------------------------------------------------------------------

    async def load_switches(self) -> None:
        """Before delivery starts: endpoints whose delivery is off are not taken at all."""
        for endpoint_id, reason in (await self._deliveries.disabled_endpoints()).items():
            self.dispatcher.disable_endpoint(endpoint_id, reason)

    def start_sweep(self) -> None:
        """Start refilling, and the sweep; its first round runs at once (in the background:
        start-up does not wait for the outbox)."""
        loop = asyncio.get_running_loop()
        if self._refiller is None:
            self._refiller = loop.create_task(self._refill_forever())
        if self._task is None:
            self._task = loop.create_task(self._sweep_forever())

    async def stop(self) -> None:
        for task in (self._task, self._refiller):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._refiller = None
        if self._arrival_timer is not None:
            self._arrival_timer.cancel()
            self._arrival_timer = None
        for timer in self._put_off.values():
            timer.cancel()
        self._put_off.clear()
        await self._deliveries.drain()

    async def _sweep_forever(self) -> None:
        first = True
        while True:
            if not first:
                await asyncio.sleep(self._sweep_seconds or 1.0)
            first = False
            try:
                await self.sweep_once(switches=self._sweep_seconds > 0 or not self.sweeps)
            except Exception as exc:  # storage away: try again next time
                log.warning("outbox sweep failed", error_type=type(exc).__name__)
            if self._sweep_seconds <= 0 and self.sweeps:
                return  # swept once at start-up; refills still follow the window

    async def _refill_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            wanted = self._spaced(self._wanted)
            self._wanted = set()
            results = await asyncio.gather(
                *(self.refill(e) for e in wanted), return_exceptions=True
            )
            failed = [e for e, r in zip(wanted, results, strict=True) if isinstance(r, Exception)]
            if failed:
                log.warning("outbox refill failed", endpoints=len(failed))
                await asyncio.sleep(0.5)  # storage away: the endpoints stay backlogged
                self._wanted.update(failed)
                self._wake.set()

    def _spaced(self, wanted: set[str]) -> set[str]:
        """The endpoints of ``wanted`` to read now; a failing one read less than
        ``FAILING_READ_SPACING`` ago is read when that time is up."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        failing = self.dispatcher.endpoint_failing
        ready = set()
        for endpoint_id in wanted:
            last = self._read_at.get(endpoint_id)
            if last is None or now >= last + FAILING_READ_SPACING or not failing(endpoint_id):
                ready.add(endpoint_id)
                timer = self._put_off.pop(endpoint_id, None)
                if timer is not None:
                    timer.cancel()  # read now: not once more when the timer fires
            elif endpoint_id not in self._put_off:
                wait = max(0.0, last + FAILING_READ_SPACING - now)
                self._put_off[endpoint_id] = loop.call_later(wait, self._read_put_off, endpoint_id)
        return ready

    def _read_put_off(self, endpoint_id: str) -> None:
        del self._put_off[endpoint_id]
        self._read_at.pop(endpoint_id, None)  # its turn now
        self._wanted.add(endpoint_id)
        self._wake.set()

    def _note_read(self, endpoint_id: str) -> None:
        """Remember when a failing endpoint was read (only failing ones: nothing is kept
        of the others, nor of an endpoint once it is not failing)."""
        if self.dispatcher.endpoint_failing(endpoint_id):
            self._read_at[endpoint_id] = asyncio.get_running_loop().time()
        else:
            self._read_at.pop(endpoint_id, None)

    # -- hooks ----------------------------------------------------------------------------

    def on_backlog(self, endpoint_id: str) -> None:
        """The dispatcher has room for an endpoint's outputs waiting in the outbox."""
        self._wanted.add(endpoint_id)
        self._wake.set()

    def on_arrival(self, endpoint_id: str) -> None:
        """A new output of a backlogged endpoint waits in the outbox: read it soon."""
        self._arrived.add(endpoint_id)
        if self._arrival_timer is None:
            loop = asyncio.get_running_loop()
            self._arrival_timer = loop.call_later(ARRIVAL_DELAY, self._take_arrivals)

    def _take_arrivals(self) -> None:
        self._arrival_timer = None
        self._wanted |= self._arrived
        self._arrived.clear()
        self._wake.set()

    async def on_gone(self, endpoint_id: str, reason: str) -> None:
        """The dispatcher switched an endpoint off after a 410: store it."""
        await self._deliveries.set_delivery_disabled(endpoint_id, reason, time.time())

    async def on_switch(self, endpoint_id: str, enabled: bool) -> None:
        """An operator switched delivery on (send what is pending) or off (pause)."""
        if enabled:
            self.dispatcher.enable_endpoint(endpoint_id)
            await self.resume(endpoint_id)
        else:
            self.dispatcher.disable_endpoint(endpoint_id, PAUSED_REASON)

    async def on_replayed(self, result: ReplayResult) -> None:
        """Take replayed outputs now (not at the next sweep)."""
        dispatcher = self.dispatcher
        for endpoint_id in result.reenabled:
            dispatcher.enable_endpoint(endpoint_id)
            log.info("endpoint delivery enabled", endpoint_id=endpoint_id, by="replay")
        for endpoint_id in result.endpoint_ids:
            await self.resume(endpoint_id)

    async def resume(self, endpoint_id: str) -> int:
        """Take the endpoint's pending outputs from the outbox, in order, as the window
        allows (the rest follows as it drains)."""
        self.dispatcher.backlog.spill(endpoint_id)
        return await self.refill(endpoint_id)

    async def take_partitions(self, partitions: list[int]) -> int:
        """Just claimed partitions: every endpoint with pending outputs is refilled (reads
        look at owned partitions only) before new outputs of it are taken."""
        del partitions  # ownership already lists them
        endpoints = await self._deliveries.endpoints_pending()
        for endpoint_id in endpoints:
            self.dispatcher.backlog.spill(endpoint_id)
        taken = await asyncio.gather(*(self.refill(e) for e in endpoints))
        return sum(taken)

    # -- refill ---------------------------------------------------------------------------

    async def refill(self, endpoint_id: str) -> int:
        """Hand the endpoint's due outputs that memory does not hold to the dispatcher, up
        to its room in the window. Returns how many were taken."""
        if endpoint_id in self._busy:
            self._again.add(endpoint_id)  # the running refill reads once more
            return 0
        self._busy.add(endpoint_id)
        taken = 0
        try:
            while True:
                self._again.discard(endpoint_id)
                taken += await self._refill_once(endpoint_id)
                if endpoint_id not in self._again:
                    return taken
        finally:
            self._busy.discard(endpoint_id)
            self._again.discard(endpoint_id)

    async def _refill_once(self, endpoint_id: str) -> int:
        dispatcher = self.dispatcher
        self._note_read(endpoint_id)
        generation = dispatcher.backlog.generation(endpoint_id)
        partitions = None if self._owned is None else self._owned()
        if endpoint_id in dispatcher.disabled_endpoints or partitions == []:
            # Nothing of it is taken now anyway; switching on (or owning) marks it again.
            if generation is not None:
                dispatcher.backlog.caught_up(endpoint_id, generation)
            return 0
        held = dispatcher.held_of(endpoint_id)
        room = dispatcher.room_for(endpoint_id, PAGE)
        if room <= 0:
            return 0  # asked again when the window drains
        limit = held + room
        complete = False

        async def read() -> Sequence[PendingDelivery]:
            nonlocal complete
            due = await self._deliveries.due(
                endpoint_id, time.time(), limit, partitions, self._resume_after.get(endpoint_id)
            )
            if due.resume_after is None:
                self._resume_after.pop(endpoint_id, None)
            else:
                self._resume_after[endpoint_id] = due.resume_after
            ids = due.all()
            complete = due.complete
            missing = [i for i in ids if not dispatcher.holds(i)][:room]
            if not missing:
                return []
            items = await self._deliveries.pending_by_ids(missing)
            if not dispatcher.releases_bodies:
                return items
            # What waits behind a head that waits for its retry leaves its body in the
            # outbox until its attempt: behind a failing head that is a long wait. Behind
            # a head on its first attempt (or held here) it goes next: its body is read
            # now, in this one read, not by a read per attempt (docs/performance.md, "The
            # delivery window"); if that head fails, the lane drops the bodies again.
            heads = set(due.heads)
            retrying = {i.outbox_id for i in items if i.attempts and i.outbox_id in heads}
            if not retrying:
                return items
            return [
                without_body(i) if due.head_of.get(i.outbox_id) in retrying else i for i in items
            ]

        taken = await dispatcher.submit_fresh(read)
        if taken or not complete:
            dispatcher.backlog.stir(endpoint_id)  # a let-go may leave room for more
        if generation is None or not complete:
            return taken
        # Everything due was read; if the outbox holds nothing else of it (nothing waiting
        # for a retry), new outputs may come straight from the session runner again.
        known = dispatcher.held_of(endpoint_id)
        ids = await self._deliveries.some_pending_ids(endpoint_id, known + 1, partitions)
        if len(ids) <= known and all(dispatcher.holds(i) for i in ids):
            dispatcher.backlog.caught_up(endpoint_id, generation)
        elif not taken:
            dispatcher.backlog.mark_quiet(endpoint_id, generation)
        return taken

    # -- the sweep ------------------------------------------------------------------------

    async def sweep_once(self, *, switches: bool = True) -> int:
        """Apply the stored switches, then refill every endpoint with something due.
        Returns how many outputs were taken."""
        dispatcher = self.dispatcher
        if switches:
            await self._apply_switches()
        pending = await self._deliveries.endpoints_pending()
        dispatcher.backlog.warm(pending)  # the first sweep ends the cold start
        self._forget_idle(pending)
        now = time.time()
        due = [
            e for e, at in pending.items() if at <= now and e not in dispatcher.disabled_endpoints
        ]
        # Backlogged with nothing pending at all: a refill finds that out and catches up.
        due += [e for e in dispatcher.backlog.endpoints() if e not in pending]
        # A failing endpoint's outputs queued behind heads that wait for their retry count
        # as due here, so without the spacing every sweep read each failing endpoint again
        # (20 reads a second for ten of them) to find nothing it could take.
        ready = self._spaced(set(due))
        taken = sum(await asyncio.gather(*(self.refill(e) for e in ready)))
        if taken:
            log.info("outbox sweep took deliveries", count=taken)
        self.sweeps += 1
        return taken

    def _forget_idle(self, pending: dict[str, float]) -> None:
        """Drop what is kept per endpoint once it is of no use: the read spacing of an
        endpoint no longer failing, the read cursor and a put-off read of one with nothing
        pending (an idle or deleted endpoint leaves nothing behind)."""
        failing = self.dispatcher.endpoint_failing
        for endpoint_id in [e for e in self._read_at if not failing(e)]:
            del self._read_at[endpoint_id]
        for endpoint_id in [e for e in self._resume_after if e not in pending]:
            del self._resume_after[endpoint_id]
        for endpoint_id in [e for e in self._put_off if e not in pending]:
            self._put_off.pop(endpoint_id).cancel()  # nothing left to read

    def tracked_endpoints(self) -> set[str]:
        """Endpoints this keeps any state for; an idle or deleted one is not among them
        after the next sweep."""
        return set(self._read_at) | set(self._resume_after) | set(self._put_off)

    async def _apply_switches(self) -> None:
        dispatcher = self.dispatcher
        version = dispatcher.endpoint_state_version
        stored = await self._deliveries.disabled_endpoints()
        # If this process switched an endpoint while we read, or is still storing a 410's
        # switch (a read that ended before that commit cannot hold it, however late it
        # began), what we read may be older than this process's view: leave it to the
        # next sweep.
        if dispatcher.endpoint_state_version != version or dispatcher.switches_storing:
            return
        for endpoint_id, reason in stored.items():
            if endpoint_id not in dispatcher.disabled_endpoints:
                dispatcher.disable_endpoint(endpoint_id, reason)
                log.info("endpoint delivery disabled", endpoint_id=endpoint_id, by="storage")
        for endpoint_id in [e for e in dispatcher.disabled_endpoints if e not in stored]:
            dispatcher.enable_endpoint(endpoint_id)
            log.info("endpoint delivery enabled", endpoint_id=endpoint_id, by="storage")

    # -- metrics --------------------------------------------------------------------------

    async def refresh_metrics(self) -> None:
        """Scrape time: queue depth and oldest pending age per endpoint, from the outbox."""
        try:
            stats = await self._deliveries.pending_stats()
        except StorageError as exc:
            log.warning("metrics: outbox unreadable", error=str(exc))
            stats = None
        dispatcher = self.dispatcher
        self._metrics.set_outbox(stats, time.time(), dispatcher.disabled_endpoints, dispatcher.held)
