"""What one attempt's result does to its output: delivered, failed for good, or tried again
later (``flowhook.delivery.retry``); a ``410 Gone`` fails it and switches its endpoint off.

A final outcome (delivered, failed) gives the output's window slot back as soon as its
write is queued, and keeps the output at the head of its lane until the write commits
(``flowhook.delivery.holdings``, ``flowhook.delivery.recording``).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import replace

import structlog

from flowhook import logs
from flowhook.delivery.attempt import BODY_READ_RETRY, BODY_UNREADABLE, HELD, SETTLED, Attempts
from flowhook.delivery.bodies import without_body
from flowhook.delivery.holdings import Holdings
from flowhook.delivery.lanes import Lane
from flowhook.delivery.recording import record, record_final
from flowhook.delivery.retry import RetryPolicy
from flowhook.delivery.types import AttemptResult, DeliveryLedger, PendingDelivery

log = structlog.get_logger(__name__)

ENDPOINT_DELETED = "endpoint deleted"
GONE_STATUS = 410
GONE_ERROR = (
    "HTTP 410 Gone: the receiver says this webhook no longer exists; delivery to the "
    "endpoint is disabled (re-enable it with deliveryEnabled: true, or replay)"
)


class Outcomes:
    def __init__(
        self,
        attempts: Attempts,
        ledger: DeliveryLedger,
        policy: RetryPolicy,
        holdings: Holdings,
        *,
        clock: Callable[[], float],
        rng: random.Random,
        switch_off: Callable[[PendingDelivery], Awaitable[None]],
        on_room: Callable[[str], None],
    ) -> None:
        """``switch_off(item)``: the item's endpoint answered 410 (its failure is written).
        ``on_room(endpoint_id)``: the endpoint's window has a slot free again."""
        self._attempts = attempts
        self._ledger = ledger
        self._policy = policy
        self._holdings = holdings
        self._on_room = on_room
        self._clock = clock
        self._rng = rng
        self._switch_off = switch_off

    async def deliver(self, lane: Lane, item: PendingDelivery) -> PendingDelivery | None:
        """One attempt of the lane's head; returns the item to retry later, or ``None`` when
        it is settled."""
        ledger = self._ledger
        result, item = await self._attempts.post(item)
        if result is HELD:
            return item  # not attempted; the lane lets go of it at its next step
        if result is SETTLED:
            return None  # not pending any more: nothing to send, nothing to write
        if result is BODY_UNREADABLE:  # storage away: the lane waits and tries again
            return replace(item, not_before=self._clock() + BODY_READ_RETRY)
        if result is None:
            log.warning(
                "delivery failed",
                endpoint_id=item.endpoint_id,
                delivery_id=item.delivery_id,
                error=ENDPOINT_DELETED,
            )
            gone = AttemptResult(None, 0.0, error=ENDPOINT_DELETED)
            tried = item.attempts
            await self._final(lane, item, "failed", lambda: ledger.failed(item, gone, tried))
            return None
        attempts = item.attempts + 1
        if result.ok:
            await self._final(lane, item, "delivered", lambda: ledger.delivered(item, result))
            _log_settled("delivered", item, result, attempts)
            return None
        if result.status == GONE_STATUS:
            answer = replace(result, error=GONE_ERROR)
            await self._final(lane, item, "failed", lambda: ledger.failed(item, answer, attempts))
            await self._switch_off(item)
            return None
        delay = self._policy.next_delay(attempts, result, self._rng)
        log.warning(
            "delivery attempt failed",
            endpoint_id=item.endpoint_id,
            delivery_id=item.delivery_id,
            status=result.status,
            error=result.error,
            attempts=attempts,
            retry_in=None if delay is None else round(delay, 3),
        )
        if delay is None:
            await self._final(lane, item, "failed", lambda: ledger.failed(item, result, attempts))
            _log_settled("failed", item, result, attempts)
            return None
        not_before = self._clock() + delay
        # If the outbox did not get the due time, the lane keeps the retry in memory: let
        # go, the outbox would hand it over at once, without the wait.
        lane.pinned = not await record(
            "retry_later", ledger.retry_later(item, result, attempts, not_before)
        )
        return replace(item, attempts=attempts, not_before=not_before)

    async def _final(
        self,
        lane: Lane,
        item: PendingDelivery,
        what: str,
        write: Callable[[], Awaitable[None]],
    ) -> None:
        """Write the lane head's final outcome; return once the ledger took it.

        The window slot is given back (and the body dropped) right away: ``write`` queues
        the write on its first step, in this same turn of the loop, and the output is not
        sent again whatever happens. It stays held at the head of its lane, so neither the
        outbox refill nor the session's next output goes before the write commits. A
        refused write takes the slot again until it is taken."""
        holdings = self._holdings
        if holdings.recording(item):
            lane.queue[0] = without_body(lane.queue[0])
            self._on_room(item.endpoint_id)
        await record_final(what, write, on_refused=lambda: holdings.not_recorded(item))


def _log_settled(outcome: str, item: PendingDelivery, result: AttemptResult, attempts: int) -> None:
    logs.delivery_outcome(
        outcome,
        endpoint_id=item.endpoint_id,
        delivery_id=item.delivery_id,
        body=item.body,
        status=result.status,
        latency_ms=result.duration_ms,
        attempts=attempts,
    )
