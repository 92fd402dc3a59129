"""Why a turn failed, and the commit that records it.

A turn may fail; a session may not stall. Whatever goes wrong in a turn (the flow, a
template, a code node, a transformer, translation, NLU, serialising the outputs, the
storage refusing its commit, a process crashing in it too often), the message ends
``failed`` with a reason naming the message, its trace id and the node when known, and
the session's next message runs. The reason is stored on the message (admin API
``GET /api/v1/messages/{id}``, ``flowhook messages show``), counted in
``flowhook_messages_failed_total{reason}`` and logged once.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from flowhook.endpoints.settings import EndpointSettings
from flowhook.storage.records import InboundMessage, TurnCommit
from flowhook.wire import output_body

# Stored reasons are for operators, not a dump: long exception texts are cut.
REASON_LIMIT = 2000


class FailureKind(enum.Enum):
    """The bounded set of metric labels."""

    FLOW = "flow_error"  # the flow failed (node, template, code, ...)
    TURN = "turn_error"  # around the flow: pipeline, transformer, serialisation
    STORAGE = "storage_error"  # the turn's commit was refused every time
    INTERRUPTED = "interrupted"  # the process crashed or stopped in its turn too often
    ENDPOINT_DELETED = "endpoint_deleted"


@dataclass(frozen=True, slots=True)
class Failure:
    kind: FailureKind
    reason: str
    node: str | None = None

    @classmethod
    def of(cls, kind: FailureKind, exc: BaseException) -> Failure:
        text = str(exc)
        return cls(kind, f"{type(exc).__name__}: {text}" if text else type(exc).__name__)

    def describe(self, msg: InboundMessage) -> str:
        """The stored reason: message id, trace id, node when known, what happened."""
        where = f" at node {self.node}" if self.node else ""
        text = f"message {msg.id} (traceId {msg.trace_id}){where}: {self.reason}"
        return text[:REASON_LIMIT]


def failure_commit(
    msg: InboundMessage,
    failure: Failure,
    *,
    epoch: int,
    settings: EndpointSettings | None,
    webhook: bool,
    store_reply: bool,
) -> tuple[TurnCommit, list[dict[str, Any]]]:
    """The message failed with its reason; the session's state stays as it was. With an
    error reply set on the endpoint, the user gets it like any output (a rest endpoint:
    in the answer, returned second)."""
    bodies = []
    reply: list[dict[str, Any]] = []
    if settings is not None and settings.error_reply is not None:
        body = output_body(
            user_id=msg.user_id,
            session_id=msg.session_id,
            text=settings.error_reply,
            data={},
            trace_id=msg.trace_id,
            disable_sensitive_logging=settings.mask_sensitive_logging,
        )
        if webhook:
            bodies.append(body)
        else:
            reply = [
                {
                    "text": settings.error_reply,
                    "data": {},
                    "traceId": msg.trace_id,
                    "disableSensitiveLogging": settings.mask_sensitive_logging,
                    "source": "bot",
                }
            ]
    commit = TurnCommit(
        message_id=msg.id,
        endpoint_id=msg.endpoint_id,
        session_id=msg.session_id,
        user_id=msg.user_id,
        state=None,
        bodies=bodies,
        failed=True,
        error=failure.describe(msg),
        epoch=epoch,
        reply=reply if store_reply else None,
    )
    return commit, reply
