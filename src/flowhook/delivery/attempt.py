"""One delivery attempt: the output's body (read back if memory let go of it), the
endpoint's current target, the signature headers, a connection slot, and the POST.

The slot is held for the POST only, never while waiting for a retry; an endpoint
switched off (or a session handed over) while the attempt waited for its slot is not
POSTed to (``HELD``).
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

    async def with_body(self, item: PendingDelivery) -> PendingDelivery | float | None:
        """The item with its body, read back from the outbox if memory let go of it.
        ``None``: it is no longer pending there (settled meanwhile: nothing to send); a
        float: the read failed, try again after that many seconds."""
        if item.body or self._load_body is None:
            return item
        try:
            body = await self._load_body(item.outbox_id)
        except Exception as exc:
            log.warning("delivery body read failed", error_type=type(exc).__name__)
            return BODY_READ_RETRY
        return None if body is None else replace(item, body=body)

    async def post(self, item: PendingDelivery) -> AttemptResult | None:
        """POST the item once; ``None`` when its endpoint no longer exists (no POST),
        ``HELD`` when it may no longer be sent (no POST)."""
        try:
            target = await self._resolver(item.endpoint_id)
        except Exception as exc:  # storage hiccup: counts as a failed attempt, retried
            return AttemptResult(None, 0.0, error=f"target lookup failed: {type(exc).__name__}")
        if target is None:
            return None
        headers = {"webhook-id": item.delivery_id}
        try:
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
            async with self._slots.slot(item.endpoint_id):
                if not self._may_send(item.endpoint_id, item.session_id):
                    return HELD  # switched off, or the session handed over, while we waited
                return await self.transport.post(target, item.body, headers)
        except Exception as exc:  # a transport must not raise, but one bug must not stall
            return AttemptResult(None, 0.0, error=f"internal error: {type(exc).__name__}")
