"""The contract between the delivery dispatcher and the rest of flowhook."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class PendingDelivery:
    """One output owed to a webhook, as stored in the outbox.

    ``seq`` orders outputs within a session (endpoint_id + session_id); ``body`` is
    the exact JSON sent; ``delivery_id`` is stable across retries (``webhook-id``).
    """

    outbox_id: int
    delivery_id: str
    endpoint_id: str
    session_id: str
    seq: int
    body: bytes
    attempts: int = 0
    not_before: float = 0.0  # unix time; 0 = now


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """Where and how to POST an endpoint's outputs. ``None`` from the resolver = endpoint gone.

    ``signing_secrets`` (``whsec_...``, newest first) each add a Standard Webhooks
    signature. Secrets are kept out of ``repr`` so a logged target cannot leak them.
    """

    url: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    signing_secrets: tuple[str, ...] = field(default=(), repr=False)


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """What one POST attempt gave."""

    status: int | None  # None: no HTTP answer (connect error, timeout)
    duration_ms: float
    error: str | None = None
    retry_after: float | None = None  # seconds, from a Retry-After header
    body_excerpt: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class DeliveryLedger(Protocol):
    """Where the dispatcher records outcomes (implemented over the Store)."""

    async def delivered(self, item: PendingDelivery, attempt: AttemptResult) -> None: ...

    async def retry_later(
        self, item: PendingDelivery, attempt: AttemptResult, attempts: int, not_before: float
    ) -> None: ...

    async def failed(
        self, item: PendingDelivery, attempt: AttemptResult, attempts: int
    ) -> None: ...


class TargetResolver(Protocol):
    async def __call__(self, endpoint_id: str) -> WebhookTarget | None: ...


class Transport(Protocol):
    """Sends one POST; injectable so the dispatcher is testable without sockets."""

    async def post(
        self, target: WebhookTarget, body: bytes, headers: dict[str, str]
    ) -> AttemptResult: ...

    async def close(self) -> None: ...
