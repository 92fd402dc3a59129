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
    webhook_password: str | None
    locale: str | None
    active: bool
    created_at: float
    updated_at: float


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


@dataclass(frozen=True, slots=True)
class TurnCommit:
    """Everything one turn changes, written in one transaction.

    ``message_id`` 0 means the turn had no inbox message (e.g. a notify).
    ``bodies`` are the exact JSON documents to deliver, in order.
    """

    message_id: int
    endpoint_id: str
    session_id: str
    user_id: str
    state: dict[str, Any]
    bodies: list[bytes] = field(default_factory=list)
    failed: bool = False
