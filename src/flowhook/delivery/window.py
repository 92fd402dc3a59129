"""Fair shares of a bounded resource between endpoints: outputs held in memory, and
connections in use.

Both follow one rule (``FairShare``): an endpoint may take one more unit while it is under
its own cap *and* either the total is under the global cap or the endpoint is under its
fair share (the global cap divided by the endpoints using the resource now). So endpoints
that hang or fail can fill the shared part, but never the share of an endpoint that needs
only a little: isolation holds by construction, whatever the number of bad endpoints. The
total never exceeds twice the global cap (a hard ceiling: only when very many endpoints
each took their share past the cap can a newcomer have to wait for a unit to be freed).

Counts are kept per endpoint only while non-zero: an idle (or deleted) endpoint leaves
nothing behind.

Connections have one more rule: an endpoint whose last ``FAILING_AFTER`` attempts all
failed (no answer, or no 2xx) is *failing* and gets at most ``failing_limit`` connections
until an attempt succeeds. A receiver that hangs would otherwise keep its whole share
busy (and an output body in memory per connection) for a timeout each, and a dead one
gets nothing from many attempts at once that it would not get from a few.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress

# Consecutive failed attempts after which an endpoint counts as failing.
FAILING_AFTER = 5
# Seconds with nothing in flight or waiting after which an endpoint's failures are forgotten.
FORGET_IDLE_AFTER = 600.0


class FairShare:
    """Units in use per endpoint, under a per-endpoint cap and a fair global cap."""

    __slots__ = ("_in_use", "_per_endpoint", "_total", "in_use")

    def __init__(self, per_endpoint: int | None, total: int | None) -> None:
        """``None`` caps are unbounded."""
        if (per_endpoint is not None and per_endpoint < 1) or (total is not None and total < 1):
            raise ValueError("caps must be >= 1")
        self._per_endpoint = per_endpoint
        self._total = total
        self._in_use: dict[str, int] = {}
        self.in_use = 0

    @property
    def per_endpoint(self) -> int | None:
        return self._per_endpoint

    @property
    def total(self) -> int | None:
        return self._total

    def of(self, endpoint_id: str) -> int:
        return self._in_use.get(endpoint_id, 0)

    def endpoint_ids(self) -> set[str]:
        """Endpoints holding at least one unit now."""
        return set(self._in_use)

    def can_take(self, endpoint_id: str, cap: int | None = None) -> bool:
        """``cap``: a lower per-endpoint cap for this endpoint now."""
        mine = self._in_use.get(endpoint_id, 0)
        if self._per_endpoint is not None and mine >= self._per_endpoint:
            return False
        if cap is not None and mine >= cap:
            return False
        if self._total is None or self.in_use < self._total:
            return True
        if self.in_use >= 2 * self._total:
            return False  # the hard ceiling: many newcomers' shares add up
        users = len(self._in_use) + (0 if mine else 1)
        return mine < max(1, self._total // users)

    def room(self, endpoint_id: str, unbounded: int) -> int:
        """How many more units the endpoint could take now (``unbounded`` if no cap)."""
        mine = self._in_use.get(endpoint_id, 0)
        own = unbounded if self._per_endpoint is None else self._per_endpoint - mine
        if self._total is None:
            return max(0, own)
        users = len(self._in_use) + (0 if mine else 1)
        share = min(max(1, self._total // users) - mine, 2 * self._total - self.in_use)
        return max(0, min(own, max(self._total - self.in_use, share)))

    def take(self, endpoint_id: str, cap: int | None = None) -> bool:
        """Take one unit if the rule allows it; returns whether it did."""
        if not self.can_take(endpoint_id, cap):
            return False
        self._in_use[endpoint_id] = self._in_use.get(endpoint_id, 0) + 1
        self.in_use += 1
        return True

    def take_anyway(self, endpoint_id: str) -> None:
        """Count a unit the endpoint holds already, whatever the caps (it gave it back
        early and must count again)."""
        self._in_use[endpoint_id] = self._in_use.get(endpoint_id, 0) + 1
        self.in_use += 1

    def give_back(self, endpoint_id: str) -> None:
        mine = self._in_use.get(endpoint_id, 0)
        if mine <= 0:
            return
        if mine == 1:
            del self._in_use[endpoint_id]
        else:
            self._in_use[endpoint_id] = mine - 1
        self.in_use -= 1


class ConnectionSlots:
    """Concurrent POSTs per endpoint under ``FairShare``; waiters are served fairly.

    A freed slot goes first to the waiting endpoint using the fewest slots, so a
    healthy endpoint that waits at all waits only for the next POST to end anywhere.
    """

    def __init__(
        self,
        per_endpoint: int,
        total: int | None,
        *,
        failing_limit: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``failing_limit``: slots of a failing endpoint (``None``: no lower cap)."""
        if failing_limit is not None and failing_limit < 1:
            raise ValueError("failing_limit must be >= 1")
        self._share = FairShare(per_endpoint, total)
        self._waiters: dict[str, deque[asyncio.Future[None]]] = {}
        self._failing_limit = failing_limit
        self._clock = clock
        # Consecutive failed attempts per endpoint, and when the last one ended. Kept
        # across the pauses between retries (a hanging receiver's attempts all time out
        # together, and its lanes then wait for their retries with nothing in flight),
        # dropped once the endpoint has had nothing in flight or waiting for
        # ``FORGET_IDLE_AFTER`` seconds (idle or deleted endpoints leave nothing behind).
        self._failures: dict[str, int] = {}
        self._failed_at: dict[str, float] = {}
        self._next_prune = clock() + FORGET_IDLE_AFTER

    def failing(self, endpoint_id: str) -> bool:
        """Whether the endpoint's last ``FAILING_AFTER`` attempts all failed."""
        return self._failures.get(endpoint_id, 0) >= FAILING_AFTER

    def attempted(self, endpoint_id: str, ok: bool) -> None:
        """Count an attempt's outcome (called while its slot is held)."""
        if ok:
            self._failed_at.pop(endpoint_id, None)
            if self._failures.pop(endpoint_id, 0) >= FAILING_AFTER:
                self._admit()  # back to its full share
            return
        now = self._clock()
        self._failures[endpoint_id] = self._failures.get(endpoint_id, 0) + 1
        self._failed_at[endpoint_id] = now
        if now >= self._next_prune:
            self._prune(now)

    def forget(self, endpoint_id: str) -> None:
        """Drop the endpoint's failure count unless it has a slot in use or awaited (its
        outputs all left memory: delivered, let go to the outbox, or deleted)."""
        if not self._share.of(endpoint_id) and endpoint_id not in self._waiters:
            self._failures.pop(endpoint_id, None)
            self._failed_at.pop(endpoint_id, None)

    def _prune(self, now: float) -> None:
        """Forget the failure counts of endpoints with nothing in flight or waiting whose
        last failure is older than ``FORGET_IDLE_AFTER``."""
        self._next_prune = now + FORGET_IDLE_AFTER
        cutoff = now - FORGET_IDLE_AFTER
        for endpoint_id, at in list(self._failed_at.items()):
            if at < cutoff and not self._share.of(endpoint_id) and endpoint_id not in self._waiters:
                del self._failed_at[endpoint_id]
                self._failures.pop(endpoint_id, None)

    def _cap(self, endpoint_id: str) -> int | None:
        return self._failing_limit if self.failing(endpoint_id) else None

    @property
    def in_use(self) -> int:
        return self._share.in_use

    def of(self, endpoint_id: str) -> int:
        return self._share.of(endpoint_id)

    def endpoint_ids(self) -> set[str]:
        """Endpoints anything is kept for: a slot in use, one awaited, or a failure count."""
        return set(self._waiters) | self._share.endpoint_ids() | set(self._failures)

    @asynccontextmanager
    async def slot(self, endpoint_id: str) -> AsyncIterator[None]:
        await self._acquire(endpoint_id)
        try:
            yield
        finally:
            self._share.give_back(endpoint_id)
            self._admit()
            if self._failed_at and self._clock() >= self._next_prune:
                self._prune(self._clock())

    async def _acquire(self, endpoint_id: str) -> None:
        if endpoint_id not in self._waiters and self._share.take(
            endpoint_id, self._cap(endpoint_id)
        ):
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(endpoint_id, deque()).append(fut)
        try:
            await fut
        except BaseException:
            if fut.done() and not fut.cancelled():
                # Admitted, then cancelled before running: hand the slot on.
                self._share.give_back(endpoint_id)
                self._admit()
            else:
                self._forget(endpoint_id, fut)
            raise

    def _forget(self, endpoint_id: str, fut: asyncio.Future[None]) -> None:
        queue = self._waiters.get(endpoint_id)
        if queue is None:
            return
        with suppress(ValueError):
            queue.remove(fut)
        if not queue:
            del self._waiters[endpoint_id]

    def _admit(self) -> None:
        """Hand free slots to waiting endpoints, fewest slots in use first."""
        while self._waiters:
            ready = [e for e in self._waiters if self._share.can_take(e, self._cap(e))]
            if not ready:
                return
            endpoint_id = min(ready, key=self._share.of)
            queue = self._waiters[endpoint_id]
            fut = queue.popleft()
            if not queue:
                del self._waiters[endpoint_id]
            if fut.done():
                continue  # cancelled while waiting
            self._share.take(endpoint_id, self._cap(endpoint_id))
            fut.set_result(None)
