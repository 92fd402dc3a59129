"""Handing a session over to a human agent through a handover provider.

flowhook ships one provider, the generic webhook provider: every event is a JSON POST
to the endpoint's ``handoverUrl``, delivered like a bot output (durably, retried, in
the session's order, signed with the endpoint's signing secret when it has one):

- ``handover.started``: the session was handed over (by a ``handover`` node or the
  API), with the transcript so far and the URLs the agent side answers on;
- ``message``: what the user wrote while handed over (the flow does not run);
- ``handover.ended``: the agent side ended the handover.

The agent side answers through the admin API (see docs/endpoints.md, "Handover"):
replies reach the user's webhook with ``source: "agent"``; ending the handover lets
the flow take over again, optionally at a named node. Another provider needs only to
turn these events into its own API calls (for instance a small service that receives
them); the session side stays the same.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote

import orjson

from flowhook.errors import NotFound
from flowhook.storage.records import InboundMessage

# Message kinds the handover API queues in the session's order.
AGENT = "agent"
START = "hand_over"
END = "hand_back"


def session_url(base_url: str, endpoint_id: str, session_id: str) -> str:
    """The admin API URL of one session. Ids are percent-encoded as whole path segments
    (``/``, ``..``, ``?`` and ``#`` included): a chat user chooses the session id, and
    must not be able to point the URL at another endpoint's session."""
    return (
        f"{base_url}/api/v1/endpoints/{quote(endpoint_id, safe='')}"
        f"/sessions/{quote(session_id, safe='')}"
    )


def event(name: str, msg: InboundMessage, base_url: str, **fields: Any) -> bytes:
    """One event for the provider, about ``msg``'s session."""
    url = session_url(base_url, msg.endpoint_id, msg.session_id)
    return orjson.dumps(
        {
            "event": name,
            "endpointId": msg.endpoint_id,
            "userId": msg.user_id,
            "sessionId": msg.session_id,
            "traceId": msg.trace_id,
            "at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            **fields,
            "replyUrl": f"{url}/handover/messages",
            "endUrl": f"{url}/handover/end",
        }
    )


class SessionLookup(Protocol):
    async def load_session(self, endpoint_id: str, session_id: str) -> dict[str, Any] | None: ...


async def require_session(store: SessionLookup, endpoint_id: str, session_id: str) -> None:
    """An agent's reply or end names a session of *this* endpoint that exists (the agent
    side learns its URLs from ``handover.started``, sent once the session is stored)."""
    if await store.load_session(endpoint_id, session_id) is None:
        raise NotFound(
            f"endpoint {endpoint_id!r} has no session {session_id!r}",
            id=session_id,
        )
