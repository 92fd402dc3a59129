"""The delivery engine: POSTs outbox items in per-session order, in parallel across sessions.

Shape (chosen for the hot path):

- Items are grouped into *lanes*, one per (endpoint_id, session_id). A lane has at
  most one worker task, which exists only while the lane has something it can send
  now; it exits when the lane drains. No task, future or timer per item.
- The head of a lane blocks the rest of that lane until it is delivered or given
  up: that is the per-session order guarantee.
- A head waiting for a retry *parks* its lane on a loop timer: no task, no
  connection slot, nothing polled. So a backlog of retries never starves first
  attempts, and a session waiting for a retry never holds up any other session.
- Connection slots are taken around the POST only (``flowhook.delivery.attempt``), under
  fair caps (``flowhook.delivery.window``): a hanging receiver never takes another's share.
- Memory holds a bounded *window* of outputs per endpoint and in total
  (``flowhook.delivery.holdings``). What does not fit stays in the outbox: the endpoint
  is then *backlogged* (``flowhook.delivery.backlog``) and refilled from the outbox, in
  order, as the window drains. A lane whose head must wait longer than ``park_limit`` for
  its retry is let go to the outbox the same way.
- A final outcome gives the window slot back once its write is queued; the output stays at
  the head of its lane until the write commits, also when it fails
  (``flowhook.delivery.outcomes``): a session's outputs are never sent out of order.

Delivery is at least once: a crash or ``stop()`` after a POST but before the ledger
recorded it means the outbox still has the item, sent again with the same ``webhook-id``.
``410 Gone`` fails that output and switches the endpoint's delivery off until
``enable_endpoint`` (its outputs stay pending in the outbox, not attempted).
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime

import structlog

from flowhook.delivery.attempt import Attempts, HeaderFactory
from flowhook.delivery.backlog import Backlog
from flowhook.delivery.bodies import BodyLoader, held_body_bytes, release_bodies, without_body
from flowhook.delivery.holdings import Holdings
from flowhook.delivery.idle import IdleWaiters
from flowhook.delivery.lanes import Lane, insert_in_order
from flowhook.delivery.outcomes import ENDPOINT_DELETED, GONE_ERROR, GONE_STATUS, Outcomes
from flowhook.delivery.retry import RetryPolicy
from flowhook.delivery.types import (
    DeliveryLedger,
    PendingDelivery,
    TargetResolver,
    Transport,
)
from flowhook.delivery.window import ConnectionSlots

log = structlog.get_logger(__name__)

# Seconds a stopping server waits for the POSTs in flight to end and be recorded.
STOP_GRACE = 2.0

__all__ = ["ENDPOINT_DELETED", "GONE_ERROR", "GONE_STATUS", "Dispatcher", "HeaderFactory"]
# Called (and awaited) when a webhook answered 410 Gone: (endpoint_id, reason).
GoneHandler = Callable[[str, str], Awaitable[None]]


class Dispatcher:
    """Delivers ``PendingDelivery`` items through a ``Transport`` and records outcomes.

    ``submit`` takes items (typically claimed from the outbox); the same
    ``outbox_id`` submitted again while the dispatcher still holds it is ignored,
    so an outbox poller may hand over what it sees without tracking it.
    """

    def __init__(
        self,
        transport: Transport,
        resolver: TargetResolver,
        ledger: DeliveryLedger,
        policy: RetryPolicy,
        *,
        max_per_endpoint: int = 64,
        max_connections: int | None = None,
        max_per_failing_endpoint: int | None = None,
        window_per_endpoint: int | None = None,
        window_total: int | None = None,
        park_limit: float = math.inf,
        on_backlog: Callable[[str], None] | None = None,
        on_arrival: Callable[[str], None] | None = None,
        cold: bool = False,
        clock: Callable[[], float] = time.time,
        header_factory: HeaderFactory | None = None,
        rng: random.Random | None = None,
        on_gone: GoneHandler | None = None,
        owns: Callable[[str, str], bool] | None = None,
        load_body: BodyLoader | None = None,
    ) -> None:
        """``owns(endpoint_id, session_id)``: with several processes, whether this one
        delivers that session's outputs now (it owns the session's partition).

        ``max_per_failing_endpoint``: POSTs at once to an endpoint whose recent attempts
        all failed, until one succeeds (``flowhook.delivery.window``).

        ``window_*``: outputs held in memory (``None``: unbounded, for a dispatcher with
        no outbox to refill from). ``park_limit``: retries due later than this many
        seconds let their lane go to the outbox. ``on_backlog(endpoint_id)``: the
        endpoint has outputs in the outbox that memory does not hold, and room for them;
        ``on_arrival(endpoint_id)``: a new output of a backlogged endpoint was left there.
        ``cold``: until ``warm()``, nothing is taken from the session runner (the outbox
        may hold older outputs of the same sessions). ``load_body(outbox_id)``: with it, an
        output waiting for a retry (or behind one) does not keep its body in memory; it is
        read back when its attempt starts (``flowhook.delivery.bodies``)."""
        if max_per_endpoint < 1:
            raise ValueError("max_per_endpoint must be >= 1")
        self._ledger = ledger
        self._policy = policy
        self._slots = ConnectionSlots(
            max_per_endpoint, max_connections, failing_limit=max_per_failing_endpoint
        )
        self._attempts = Attempts(
            transport,
            resolver,
            self._slots,
            may_send=self._may_send,
            clock=clock,
            header_factory=header_factory,
            load_body=load_body,
        )
        # outbox ids queued, in flight, parked or having their outcome written
        self._holdings = Holdings(window_per_endpoint, window_total)
        self._park_limit = park_limit
        self.backlog = Backlog(on_backlog, self._notify_idle, cold=cold, on_arrival=on_arrival)
        self._clock = clock
        self._on_gone = on_gone
        self._owns = owns or _everything
        self._load_body = load_body
        self._outcomes = Outcomes(
            self._attempts,
            ledger,
            policy,
            self._holdings,
            clock=clock,
            rng=rng or random.Random(),  # jitter, not security
            switch_off=self._switch_off_gone,
            on_room=self._room,
        )
        self._lanes: dict[tuple[str, str], Lane] = {}
        self._disabled: dict[str, str] = {}  # endpoint id -> why its delivery is off
        # Deleted endpoints with an output still held: forgotten once none is.
        self._deleted: set[str] = set()
        # Bumped on every change of _disabled (and when a 410 was stored): a reader of the
        # stored switches knows whether what it read may be older than this process's view.
        self.endpoint_state_version = 0
        # 410 switches being stored now: until each has committed, the stored switches
        # are older than this process's view whenever they were read.
        self.switches_storing = 0
        self._parked = 0  # lanes whose head waits on a timer
        self._idle = IdleWaiters(self._is_idle)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped = False

    # -- public API ------------------------------------------------------------------

    @property
    def held(self) -> int:
        """Items held in memory (queued, in flight, waiting for a retry, or their outcome
        being written).

        An outbox poller can use this for back-pressure: claim more only below a bound.
        """
        return len(self._holdings)

    @property
    def reads_remembered(self) -> int:
        """Ids kept for outbox reads running now (zero when none runs)."""
        return self._holdings.reads_remembered

    def holds(self, outbox_id: int) -> bool:
        """Whether the item is queued, in flight, waiting for a retry, or its outcome being
        written here (the outbox still has it pending: it must not be taken again)."""
        return outbox_id in self._holdings

    def endpoint_failing(self, endpoint_id: str) -> bool:
        """Whether the endpoint's last attempts all failed (it gets few connections)."""
        return self._slots.failing(endpoint_id)

    def held_of(self, endpoint_id: str) -> int:
        """Items of one endpoint held in memory (all still pending in the outbox)."""
        return self._holdings.of(endpoint_id)

    def in_window(self, endpoint_id: str) -> int:
        """Window slots the endpoint takes now: its held items but those whose final
        outcome is being written."""
        return self._holdings.in_window(endpoint_id)

    def room_for(self, endpoint_id: str, unbounded: int) -> int:
        """How many more items of the endpoint the window would take now."""
        return self._holdings.room(endpoint_id, unbounded)

    @property
    def releases_bodies(self) -> bool:
        """Whether an output may be held without its body (read back for its attempt)."""
        return self._load_body is not None

    def body_bytes_held(self) -> int:
        """Bytes of output bodies held in memory (for metrics)."""
        return sum(held_body_bytes(lane.queue) for lane in self._lanes.values())

    @property
    def connections_in_use(self) -> int:
        return self._slots.in_use

    def tracked_endpoints(self) -> set[str]:
        """Endpoints this dispatcher keeps any state for (held items, slots, backlog);
        an idle or deleted endpoint is not among them."""
        return (
            self._holdings.endpoint_ids()
            | set(self.backlog.endpoints())
            | self._slots.endpoint_ids()
            | self._deleted
        )

    def queued_per_endpoint(self) -> dict[str, int]:
        """Items held in memory, per endpoint (for metrics)."""
        out: dict[str, int] = {}
        for (endpoint_id, _session), lane in self._lanes.items():
            out[endpoint_id] = out.get(endpoint_id, 0) + len(lane.queue)
        return out

    async def start(self) -> None:
        """Bind to the running loop and start lanes for anything submitted before."""
        if self._stopped:
            raise RuntimeError("a stopped Dispatcher cannot be restarted")
        self._loop = asyncio.get_running_loop()
        for lane in self._lanes.values():
            if lane.task is None and lane.timer is None:
                self._spawn(lane)

    def submit(self, items: Iterable[PendingDelivery], *, from_outbox: bool = False) -> None:
        """Queue items for delivery. Synchronous and non-blocking; call it on the loop.

        Items that do not fit the window are left where they are: in the outbox. Items
        handed over by the session runner (``from_outbox`` False) are left there too
        while their endpoint is backlogged, since older outputs of the same sessions
        may be waiting in the outbox; the outbox refill takes them in order."""
        if self._stopped:
            raise RuntimeError("Dispatcher is stopped")
        held = self._holdings
        lanes = self._lanes
        disabled = self._disabled
        owns = self._owns
        full: set[str] = set()
        for item in items:
            endpoint_id = item.endpoint_id
            if (
                item.outbox_id in held
                or endpoint_id in disabled
                or endpoint_id in full
                or not owns(endpoint_id, item.session_id)
            ):
                continue
            if not from_outbox and not self.backlog.takes_direct(endpoint_id):
                full.add(endpoint_id)  # later items of it must not overtake this one
                self.backlog.arrived(endpoint_id)
                continue
            if not held.take(item):
                full.add(endpoint_id)
                self.backlog.spill(endpoint_id)  # read back as the window drains
                continue
            key = (endpoint_id, item.session_id)
            lane = lanes.get(key)
            if lane is None:
                if self._load_body is not None and self._slots.failing(endpoint_id):
                    item = without_body(item)  # waits for one of the failing endpoint's slots
                lane = lanes[key] = Lane(key, deque((item,)))
                if self._loop is not None:
                    self._spawn(lane)
                continue
            if self._load_body is not None and (
                not lane.queue[0].body or self._slots.failing(endpoint_id)
            ):
                item = without_body(item)  # behind a head waiting for its retry
            if (
                insert_in_order(lane.queue, item, head_locked=lane.sending)
                and lane.timer is not None
            ):
                # An earlier seq became the head of a parked lane: it must go first,
                # without waiting for the retry timer of the item now behind it.
                lane.timer.cancel()
                lane.timer = None
                self._parked -= 1
                self._spawn(lane)

    async def submit_fresh(self, read: Callable[[], Awaitable[Sequence[PendingDelivery]]]) -> int:
        """Submit what ``read`` returns from the outbox, minus what settled meanwhile.

        An outbox row read as pending may be delivered (and let go) while the read is
        still running; submitting it then would send it twice. Items settled while
        ``read`` runs are dropped; held ones are ignored by ``submit`` anyway. Returns
        how many items were newly taken.
        """
        held = self._holdings
        with held.watching() as stale:
            items = await read()
            fresh = [
                i
                for i in items
                if not stale(i.outbox_id, (i.endpoint_id, i.session_id))
                and i.outbox_id not in held
                and i.endpoint_id not in self._disabled
            ]
        before = len(held)
        self.submit(fresh, from_outbox=True)
        return len(held) - before

    async def let_go(self, timeout: float) -> None:
        """Let go of the sessions this process no longer owns: lanes waiting for a retry at
        once, lanes sending after their POST in flight (awaited, up to ``timeout``). Their
        outputs stay pending in the outbox for the new owner."""
        running = []
        for lane in list(self._lanes.values()):
            if not self._owns(*lane.key) and not self._release_unless_sending(lane):
                assert lane.task is not None
                running.append(lane.task)
        self._notify_idle()
        if running:
            await asyncio.wait(running, timeout=timeout)

    # -- the endpoint delivery switch ------------------------------------------------------

    @property
    def disabled_endpoints(self) -> Mapping[str, str]:
        """Endpoints whose delivery is off, with the reason."""
        return self._disabled

    def disable_endpoint(self, endpoint_id: str, reason: str) -> None:
        """Stop delivering to an endpoint: its items are let go (they stay pending in the
        outbox) and later submissions are ignored until ``enable_endpoint``."""
        self._disabled[endpoint_id] = reason
        self.endpoint_state_version += 1
        for lane in [lane for key, lane in self._lanes.items() if key[0] == endpoint_id]:
            self._release_unless_sending(lane)
        self._notify_idle()

    def enable_endpoint(self, endpoint_id: str) -> bool:
        """Deliver to the endpoint again; returns False if it was not disabled.

        The caller re-submits its pending items (from the outbox)."""
        self.endpoint_state_version += 1
        was = self._disabled.pop(endpoint_id, None) is not None
        if was:
            self.backlog.spill(endpoint_id)  # its outputs wait in the outbox
        return was

    async def run_until_idle(
        self,
        timeout: float | None = None,
        *,
        include_scheduled: bool = True,
    ) -> None:
        """Wait until the dispatcher has nothing left to do.

        With ``include_scheduled=True`` (the default) that means every submitted item
        reached a final outcome (delivered or failed): items waiting for a retry are
        waited for too. With ``include_scheduled=False`` it returns as soon as nothing
        is queued to send now or in flight, only (possibly) items parked until a
        future retry time. Raises ``TimeoutError`` after ``timeout`` seconds.
        """
        await self._idle.wait(include_scheduled, timeout)

    async def stop(self, grace: float = STOP_GRACE) -> None:
        """Start no more attempts; let the POSTs in flight end and their outcomes be
        written, for up to ``grace`` seconds; then cancel all lanes and timers and close
        the transport.

        Without the wait, a POST the receiver had taken when the server stopped was sent
        again after the restart (at least once allows it; a clean stop need not cause it).
        Items not yet recorded stay in the outbox and are delivered after a restart.
        """
        self._stopped = True
        sending = [lane.task for lane in self._lanes.values() if lane.sending and lane.task]
        if sending and grace > 0:
            await asyncio.wait(sending, timeout=grace)
        tasks = []
        for lane in self._lanes.values():
            if lane.timer is not None:
                lane.timer.cancel()
                lane.timer = None
            if lane.task is not None:
                lane.task.cancel()
                tasks.append(lane.task)
        await asyncio.gather(*tasks, return_exceptions=True)
        self._lanes.clear()
        self._holdings.clear()
        self.backlog.clear()
        self._parked = 0
        self._notify_idle()
        await self._attempts.transport.close()

    # -- lanes -----------------------------------------------------------------------

    def _release(self, lane: Lane) -> None:
        """Forget a lane's items without an outcome: they are still pending in the outbox,
        so its endpoint is backlogged (a later output of the session must not overtake).
        Not when delivery is off or the session handed over: nothing of it is taken
        then, and switching on (or owning it again) backlogs it."""
        endpoint_id = lane.key[0]
        for item in lane.queue:
            self._holdings.forget(item, let_go=True)
        lane.queue.clear()
        if self._lanes.get(lane.key) is lane:
            del self._lanes[lane.key]
        if endpoint_id not in self._disabled and self._owns(*lane.key):
            self.backlog.let_go(endpoint_id)
        # The endpoint's failure count stays: its outputs wait in the outbox for their
        # retries, and it is still failing. Dropped here, a receiver that refuses every
        # connection stopped counting as failing after each attempt, took its full share of
        # connections and was read from the outbox after every let-go (docs/performance.md,
        # "Where a healthy output waits"). A success, the endpoint's deletion or
        # ``FORGET_IDLE_AFTER`` idle seconds drop it (``ConnectionSlots``).
        if endpoint_id in self._deleted:
            self._forget_if_unheld(endpoint_id)

    def _release_unless_sending(self, lane: Lane) -> bool:
        """Release a lane at once unless its worker runs (it lets go at its next step,
        after an attempt in flight); a retry timer is cancelled. Returns whether released."""
        if lane.task is not None:
            return False
        if lane.timer is not None:
            lane.timer.cancel()
            lane.timer = None
            self._parked -= 1
        self._release(lane)
        return True

    def _settled(self, item: PendingDelivery) -> None:
        if self._holdings.forget(item):
            self._room(item.endpoint_id)  # (else it was asked when the outcome was queued)
        self._forget_if_unheld(item.endpoint_id)

    def forget_endpoint(self, endpoint_id: str) -> None:
        """The endpoint was deleted: its failure count goes now, or once memory holds
        nothing of it (an attempt in flight, a retry waiting in memory)."""
        self._deleted.add(endpoint_id)
        self._forget_if_unheld(endpoint_id)

    def _forget_if_unheld(self, endpoint_id: str) -> None:
        """Memory holds nothing of the endpoint (delivered, let go to the outbox, or
        deleted): nothing of it is in flight, and its failure count goes too."""
        if not self._holdings.of(endpoint_id):
            self._slots.forget(endpoint_id)
            self._deleted.discard(endpoint_id)

    def _room(self, endpoint_id: str) -> None:
        """An output of the endpoint settled, or gave its window slot back."""
        if self._holdings.worth_reading(endpoint_id):
            self.backlog.room(endpoint_id)

    def _may_send(self, endpoint_id: str, session_id: str) -> bool:
        return endpoint_id not in self._disabled and self._owns(endpoint_id, session_id)

    def _spawn(self, lane: Lane) -> None:
        assert self._loop is not None
        lane.task = self._loop.create_task(self._drive(lane))

    def _park(self, lane: Lane, delay: float) -> None:
        assert self._loop is not None
        lane.timer = self._loop.call_later(delay, self._wake, lane)
        self._parked += 1

    def _wake(self, lane: Lane) -> None:
        lane.timer = None
        self._parked -= 1
        # The timer *is* the due date: trusting it (instead of re-reading the clock)
        # keeps an injected clock from parking the lane forever.
        lane.due_id = lane.queue[0].outbox_id
        self._spawn(lane)

    async def _drive(self, lane: Lane) -> None:
        """Send the lane's items one by one until it drains or its head must wait."""
        queue = lane.queue
        try:
            while queue:
                if self._stopped:
                    return  # stopping: what is left stays pending in the outbox
                if lane.key[0] in self._disabled or not self._owns(*lane.key):
                    self._release(lane)
                    return
                item = queue[0]
                if lane.due_id == item.outbox_id:
                    lane.due_id = None
                elif item.not_before:
                    delay = item.not_before - self._clock()
                    if delay > self._park_limit and not lane.pinned:
                        # Waits long: the outbox has its due time; the window is freed.
                        self._release(lane)
                        return
                    if delay > 0:
                        self._park(lane, delay)
                        return
                lane.sending = True
                try:
                    retry = await self._outcomes.deliver(lane, item)
                finally:
                    lane.sending = False
                if retry is None:
                    queue.popleft()
                    lane.pinned = False
                    self._settled(item)
                else:
                    queue[0] = retry
                    if self._load_body is not None:
                        release_bodies(queue)  # nothing of the lane goes before the retry
            if self._lanes.get(lane.key) is lane:
                del self._lanes[lane.key]
        finally:
            lane.task = None
            self._notify_idle()

    # -- 410 Gone --------------------------------------------------------------------

    async def _switch_off_gone(self, item: PendingDelivery) -> None:
        """The endpoint answered 410 (that output is failed): its delivery is switched off."""
        if item.endpoint_id in self._disabled:
            return  # another lane of the endpoint got its 410 first
        at = datetime.fromtimestamp(self._clock(), tz=UTC).isoformat(timespec="seconds")
        reason = (
            f"the webhook answered 410 Gone at {at} (delivery {item.delivery_id}); "
            "re-enable delivery with deliveryEnabled: true, or replay"
        )
        log.warning(
            "endpoint delivery disabled",
            endpoint_id=item.endpoint_id,
            delivery_id=item.delivery_id,
            reason="410 Gone",
        )
        self.disable_endpoint(item.endpoint_id, reason)
        if self._on_gone is not None:
            self.switches_storing += 1
            try:
                await self._on_gone(item.endpoint_id, reason)
            except Exception as exc:
                log.error(
                    "endpoint disable not stored",
                    endpoint_id=item.endpoint_id,
                    error_type=type(exc).__name__,
                )
            finally:
                self.switches_storing -= 1
        # Stored now: a reader of the stored switches that started earlier must not
        # take its (older) answer over this process's view.
        self.endpoint_state_version += 1

    # -- idleness --------------------------------------------------------------------

    def _is_idle(self, include_scheduled: bool) -> bool:
        if self.backlog.cold:
            return False
        if include_scheduled:
            return not self._lanes and not self.backlog
        return len(self._lanes) == self._parked and self.backlog.all_quiet()

    def _notify_idle(self) -> None:
        self._idle.notify(stopped=self._stopped)


def _everything(_endpoint_id: str, _session_id: str) -> bool:
    return True
