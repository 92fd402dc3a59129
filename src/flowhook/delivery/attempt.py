"""One delivery attempt: the endpoint's current target, a connection slot, the output's
body (read back if memory let go of it), the signature headers, and the POST.

The slot is held for the body read and the POST only, never while waiting for a retry;
an endpoint switched off (or a session handed over) while the attempt waited for its
slot is not POSTed to (``HELD``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

import structlog

from flowhook.delivery.bodies import BodyLoader
from flowhook.delivery.signing import signature_headers
from flowhook.delivery.types import AttemptResult, PendingDelivery, TargetResolver, Transport
from flowhook.delivery.window import ConnectionSlots

log = structlog.get_logger(__name__)

HeaderFactory = Callable[[PendingDelivery], Mapping[str, str]]
# Seconds before an attempt whose body could not be read back from the outbox tries again.
BODY_READ_RETRY = 1.0
# What ``Attempts.post`` returns when the endpoint was switched off before the POST.
HELD = AttemptResult(None, 0.0, error="held: endpoint delivery disabled")
# ... when the output was no longer pending in the outbox (settled meanwhile): no POST.
SETTLED = AttemptResult(None, 0.0, error="settled meanwhile")
# ... when its body could not be read back from the outbox: no POST, tried again shortly.
BODY_UNREADABLE = AttemptResult(None, 0.0, error="body read failed")


class Attempts:
    def __init__(
        self,
        transport: Transport,
        resolver: TargetResolver,
        slots: ConnectionSlots,
        *,
        may_send: Callable[[str, str], bool],
        clock: Callable[[], float],
        header_factory: HeaderFactory | None,
        load_body: BodyLoader | None,
    ) -> None:
        """``may_send(endpoint_id, session_id)``: whether the output may still be POSTed
        (delivery on, session owned), asked once a slot is taken."""
        self.transport = transport
        self._resolver = resolver
        self._slots = slots
        self._may_send = may_send
        self._clock = clock
        self._header_factory = header_factory
        self._load_body = load_body

    async def post(self, item: PendingDelivery) -> tuple[AttemptResult | None, PendingDelivery]:
        """POST the item once; returns the result and the item as sent (with its body,
        read back from the outbox if memory let go of it). The result is ``None`` when
        the endpoint no longer exists, ``HELD`` when the output may no longer be sent,
        ``SETTLED`` when the outbox no longer has it pending, ``BODY_UNREADABLE`` when its
        body could not be read: none of these was POSTed.

        The body is read once a connection slot is taken, so outputs waiting for a slot
        (a hanging receiver's, say) keep no body in memory."""
        try:
            target = await self._resolver(item.endpoint_id)
        except Exception as exc:  # storage hiccup: counts as a failed attempt, retried
            error = f"target lookup failed: {type(exc).__name__}"
            return AttemptResult(None, 0.0, error=error), item
        if target is None:
            return None, item
        slots = self._slots
        endpoint_id = item.endpoint_id
        try:
            async with slots.slot(endpoint_id):
                if not self._may_send(endpoint_id, item.session_id):
                    return HELD, item  # switched off, or the session handed over, meanwhile
                if not item.body and self._load_body is not None:
                    try:
                        body = await self._load_body(item.outbox_id)
                    except Exception as exc:
                        log.warning("delivery body read failed", error_type=type(exc).__name__)
                        return BODY_UNREADABLE, item
                    if body is None:
                        return SETTLED, item
                    item = replace(item, body=body)
                headers = {"webhook-id": item.delivery_id}
                if target.signing_secrets:
                    # Signed per attempt: the timestamp is this attempt's, so receivers can
                    # reject stale replays and still accept a late retry.
                    headers.update(
                        signature_headers(
                            target.signing_secrets, item.delivery_id, item.body, self._clock()
                        )
                    )
                if self._header_factory is not None:
                    headers.update(self._header_factory(item))
                result = await self.transport.post(target, item.body, headers)
                slots.attempted(endpoint_id, result.ok)
                return result, item
        except Exception as exc:  # a transport must not raise, but one bug must not stall
            return AttemptResult(None, 0.0, error=f"internal error: {type(exc).__name__}"), item
