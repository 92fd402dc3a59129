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
from typing import Any

import orjson

from flowhook.storage.records import InboundMessage

# Message kinds the handover API queues in the session's order.
AGENT = "agent"
START = "hand_over"
END = "hand_back"


def event(name: str, msg: InboundMessage, base_url: str, **fields: Any) -> bytes:
    """One event for the provider, about ``msg``'s session."""
    session_url = f"{base_url}/api/v1/endpoints/{msg.endpoint_id}/sessions/{msg.session_id}"
    return orjson.dumps(
        {
            "event": name,
            "endpointId": msg.endpoint_id,
            "userId": msg.user_id,
            "sessionId": msg.session_id,
            "traceId": msg.trace_id,
            "at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            **fields,
            "replyUrl": f"{session_url}/handover/messages",
            "endUrl": f"{session_url}/handover/end",
        }
    )
