"""Plain records the Store reads and writes; no behaviour, no SQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class EndpointRecord:
    id: str
    name: str
    flow: str
    url_token: str
    auth_method: str  # "none" | "apiKey"
    webhook_url: str
    webhook_user: str | None
    webhook_password: str | None = field(repr=False)  # encrypted, as stored
    locale: str | None
    active: bool
    created_at: float
    updated_at: float
    signing_secret: str | None = field(default=None, repr=False)  # encrypted
    previous_signing_secret: str | None = field(default=None, repr=False)  # encrypted
    signing_secret_rotated_at: float | None = None
    delivery_disabled_reason: str | None = None  # set: outputs are held, not attempted
    delivery_disabled_at: float | None = None
    type: str = "webhook"  # "webhook" | "rest"
    settings: str | None = None  # JSON: flowhook.endpoints.settings.EndpointSettings


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    id: str
    endpoint_id: str
    name: str | None
    key_hash: str
    key_prefix: str
    created_at: float
    last_used_at: float | None = None


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """An accepted user message. ``id`` is assigned by the Store on commit."""

    endpoint_id: str
    session_id: str
    user_id: str
    trace_id: str
    text: str | None
    data: dict[str, Any] | None
    received_at: float
    id: int = 0
    kind: str = "message"  # "message" (run the flow) | "notify" (deliver as is)
    client_ip: str | None = None  # already truncated when the endpoint masks IPs
    # Read back from the inbox (not handed over in memory by the process that accepted
    # it): another process may have started its turn before. ``attempts``: runs started
    # after such read-backs, as stored.
    read_back: bool = False
    attempts: int = 0
    # The configuration generation the ingress checked the endpoint and key under: the
    # insert is refused (ConfigChanged) when the stored one has moved since. None: no check.
    generation: int | None = None


def with_id(msg: InboundMessage, message_id: int) -> InboundMessage:
    """``msg`` as committed, with its id. The constructor called directly: 1.3 µs
    against 3.3 µs for ``dataclasses.replace``, which looks up every field by name (once
    per accepted message)."""
    return InboundMessage(
        msg.endpoint_id,
        msg.session_id,
        msg.user_id,
        msg.trace_id,
        msg.text,
        msg.data,
        msg.received_at,
        message_id,
        msg.kind,
        msg.client_ip,
        msg.read_back,
        msg.attempts,
        msg.generation,
    )


@dataclass(frozen=True, slots=True)
class TurnCommit:
    """Everything one turn changes, written in one transaction.

    ``message_id`` 0 means the turn had no inbox message (e.g. a notify).
    ``bodies`` are the exact JSON documents to deliver, in order. ``state`` None leaves
    the session's stored state as it is (a failed turn). ``error``: why it failed.
    """

    message_id: int
    endpoint_id: str
    session_id: str
    user_id: str
    state: dict[str, Any] | None
    bodies: list[bytes] = field(default_factory=list)
    failed: bool = False
    error: str | None = None
    profile: dict[str, Any] | None = None  # the user's new profile; None: unchanged
    transcript: list[TranscriptEntry] = field(default_factory=list)
    # events for the endpoint's handover provider, delivered like outputs, in order
    handover_events: list[bytes] = field(default_factory=list)
    stats: TurnStats | None = None  # None: the endpoint collects no analytics
    # Several processes (flowhook.cluster): the epoch of the partition lease the turn ran
    # under; the commit is refused unless the process still holds that lease. 0: unfenced.
    epoch: int = 0
    # A rest endpoint's outputs (AIOutput objects), stored for a request waiting in
    # another process; None: nobody waits elsewhere.
    reply: list[dict[str, Any]] | None = None
    # The version of the user's profile the flow read (0: none stored yet); None: the
    # turn read no profile. Several processes: checked at commit.
    profile_version: int | None = None


@dataclass(frozen=True, slots=True)
class TranscriptEntry:
    direction: str  # "in" | "out"
    source: str  # "user" | "bot" | "notify"
    text: str | None
    data: dict[str, Any] | None
    trace_id: str
    client_ip: str | None = None


@dataclass(frozen=True, slots=True)
class TurnStats:
    turn_ms: float
    intent: str | None
    handover: bool
    outputs: int


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One outbox row (an output owed to, or given to, a webhook)."""

    outbox_id: int
    delivery_id: str  # the webhook-id
    endpoint_id: str
    session_id: str
    message_id: int | None
    status: str  # pending | delivered | failed
    attempts: int  # attempts counted towards the retry schedule (0 again after a replay)
    not_before: float
    last_status: int | None
    last_error: str | None
    created_at: float
    finished_at: float | None
    replayed_at: float | None
    body: bytes | None = None  # only when asked for


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One POST of a delivery, as logged."""

    id: int
    at: float
    status: int | None
    duration_ms: float
    error: str | None
    body_excerpt: str | None


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What a replay reset to pending, and whether it switched the endpoint back on."""

    endpoint_ids: tuple[str, ...]
    outbox_ids: tuple[int, ...]
    reenabled: tuple[str, ...]
