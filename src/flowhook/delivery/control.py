"""Keeps the running dispatcher in step with the outbox and the endpoint delivery switches.

- **410 Gone** (``on_gone``): the switch is stored, so it survives a restart and shows in
  the endpoint's view.
- **Switched on again or replayed** (``on_switch``, ``on_replayed``): the endpoint's
  pending outputs (replayed ones included) go to the dispatcher at once.
- **The sweep** (every ``delivery_sweep_seconds``): reads the stored switches, and the
  pending outputs the dispatcher does not hold, and hands those over. That is how a replay
  or a switch made by another process (the CLI) reaches this server, and it makes the
  in-memory hand-over from the session runner robust: a missed hand-over is picked up.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence

import structlog

from flowhook.delivery.dispatcher import Dispatcher
from flowhook.delivery.types import PendingDelivery
from flowhook.endpoints.service import PAUSED_REASON
from flowhook.errors import StorageError
from flowhook.metrics import Metrics
from flowhook.storage.deliveries import DeliveryStore
from flowhook.storage.records import ReplayResult

log = structlog.get_logger(__name__)

# Pending outbox ids one sweep looks at (oldest first); only those the dispatcher does
# not hold are read in full.
SWEEP_PAGE = 10_000
RESUME_PAGE = 5_000


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
        delivers (the sweep looks at those only)."""
        self._owned = owned
        self._deliveries = deliveries
        self._metrics = metrics
        self._sweep_seconds = sweep_seconds
        self._dispatcher: Dispatcher | None = None
        self._task: asyncio.Task[None] | None = None
        self.sweeps = 0  # completed sweeps (tests wait on it)

    def attach(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher

    @property
    def dispatcher(self) -> Dispatcher:
        assert self._dispatcher is not None, "attach() a dispatcher first"
        return self._dispatcher

    # -- life cycle -----------------------------------------------------------------------

    async def load_switches(self) -> None:
        """Before recovery: endpoints whose delivery is off are not handed over at all."""
        for endpoint_id, reason in (await self._deliveries.disabled_endpoints()).items():
            self.dispatcher.disable_endpoint(endpoint_id, reason)

    def start_sweep(self) -> None:
        if self._sweep_seconds > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._sweep_forever())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_seconds)
            try:
                await self.sweep_once()
            except Exception as exc:  # storage away: try again next time
                log.warning("outbox sweep failed", error_type=type(exc).__name__)

    # -- hooks ----------------------------------------------------------------------------

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
        """Hand replayed outputs to the dispatcher now (not at the next sweep)."""
        dispatcher = self.dispatcher
        for endpoint_id in result.reenabled:
            dispatcher.enable_endpoint(endpoint_id)
            log.info("endpoint delivery enabled", endpoint_id=endpoint_id, by="replay")
            await self.resume(endpoint_id)
        if result.reenabled:
            return
        ids = result.outbox_ids
        for start in range(0, len(ids), RESUME_PAGE):
            chunk = ids[start : start + RESUME_PAGE]

            async def read(chunk: Sequence[int] = chunk) -> Sequence[PendingDelivery]:
                return await self._deliveries.pending_by_ids(chunk)

            await dispatcher.submit_fresh(read)

    async def resume(self, endpoint_id: str) -> int:
        """Hand every pending output of the endpoint to the dispatcher, in order."""
        return await self._take_all(
            lambda after, limit: self._deliveries.pending_of_endpoint(endpoint_id, after, limit)
        )

    async def take_partitions(self, partitions: list[int]) -> int:
        """Hand every pending output of these (just claimed) partitions to the dispatcher."""
        return await self._take_all(
            lambda after, limit: self._deliveries.pending_in_partitions(partitions, after, limit)
        )

    async def _take_all(self, fetch: Callable[[int, int], Awaitable[list[PendingDelivery]]]) -> int:
        taken = 0
        page = _Page(fetch)
        while True:
            taken += await self.dispatcher.submit_fresh(page.read)
            if len(page.items) < RESUME_PAGE:
                return taken
            page.after = page.items[-1].outbox_id

    # -- the sweep ------------------------------------------------------------------------

    async def sweep_once(self) -> int:
        """Apply the stored switches, then take pending outputs nobody holds. Returns how
        many outputs were taken."""
        dispatcher = self.dispatcher
        version = dispatcher.endpoint_state_version
        stored = await self._deliveries.disabled_endpoints()
        # If this process switched an endpoint while we read, what we read may be older
        # than that: leave it to the next sweep.
        if dispatcher.endpoint_state_version == version:
            for endpoint_id, reason in stored.items():
                if endpoint_id not in dispatcher.disabled_endpoints:
                    dispatcher.disable_endpoint(endpoint_id, reason)
                    log.info("endpoint delivery disabled", endpoint_id=endpoint_id, by="storage")
            for endpoint_id in [e for e in dispatcher.disabled_endpoints if e not in stored]:
                dispatcher.enable_endpoint(endpoint_id)
                log.info("endpoint delivery enabled", endpoint_id=endpoint_id, by="storage")

        partitions = None if self._owned is None else self._owned()
        if partitions == []:
            self.sweeps += 1
            return 0

        async def read() -> Sequence[PendingDelivery]:
            ids = await self._deliveries.pending_ids(SWEEP_PAGE, partitions)
            missing = [i for i in ids if not dispatcher.holds(i)]
            return await self._deliveries.pending_by_ids(missing) if missing else []

        taken = await dispatcher.submit_fresh(read)
        if taken:
            log.info("outbox sweep took deliveries", count=taken)
        self.sweeps += 1
        return taken

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


class _Page:
    """Pending outputs, a page at a time in id order (``read`` for ``submit_fresh``)."""

    def __init__(self, fetch: Callable[[int, int], Awaitable[list[PendingDelivery]]]) -> None:
        self._fetch = fetch  # (after_id, limit) -> the next page
        self.after = 0
        self.items: list[PendingDelivery] = []

    async def read(self) -> Sequence[PendingDelivery]:
        self.items = await self._fetch(self.after, RESUME_PAGE)
        return self.items
