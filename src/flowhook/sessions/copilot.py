"""Copilot (agent assist): a second flow that helps the human agent during a handover.

While a session is handed over, the endpoint's ``copilotFlow`` runs on every message
of the conversation: the user's (forwarded to the agent) and the agent's (sent to the
user). Its outputs never reach the user. They are the agent's suggestions (replies to
send, next best actions, a summary: whatever the flow's outputs say, typically marked
in their data) and go

- to the handover provider, as a ``copilot`` event delivered like the other handover
  events (durable, retried, in the session's order), and
- into the session's state as the latest suggestions, which the agent API
  (``GET .../sessions/{sessionId}/copilot``) returns.

The copilot flow keeps its own session state (its own context and questions) inside
the session's, so it remembers across the handover without touching the main flow's.
The flow sees ``input.data.copilot.from`` (``"user"`` or ``"agent"``). A copilot flow
that crashes costs a log line, never the turn: the conversation goes on without
suggestions.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import structlog

from flowhook.endpoints.settings import EndpointSettings
from flowhook.flows.types import FlowEngine, SessionState, TurnInput
from flowhook.sessions import handover
from flowhook.storage.records import InboundMessage

if TYPE_CHECKING:
    from flowhook.storage.store import SqlStore

log = structlog.get_logger(__name__)

# Where the session keeps the copilot's own state and its latest suggestions.
STATE_KEY = "copilot.state"
LATEST_KEY = "copilot.latest"


class Copilot:
    def __init__(self, engine: FlowEngine, base_url: str) -> None:
        self._engine = engine
        self._base_url = base_url

    async def assist(
        self,
        settings: EndpointSettings,
        msg: InboundMessage,
        state: SessionState,
        *,
        text: str | None = None,
    ) -> list[bytes]:
        """Run the copilot flow on ``msg`` (a user message forwarded to the agent, or an
        agent's reply) when the endpoint has one; its suggestions are kept in ``state``
        and returned as the provider's event (none without a handover URL).
        ``text``: the message as the agent reads it (translated), default its own."""
        flow = settings.copilot_flow
        if flow is None or state.handover is None:
            return []
        author = "agent" if msg.kind == handover.AGENT else "user"
        own = SessionState.from_json(state.extra.get(STATE_KEY))
        turn = TurnInput(
            user_id=msg.user_id,
            session_id=msg.session_id,
            trace_id=msg.trace_id,
            text=msg.text if text is None else text,
            data={**(msg.data or {}), "copilot": {"from": author}},
            received_at=msg.received_at,
            session_timeout=0,  # the conversation's own session decides when it ends
        )
        try:
            result = await self._engine.run_turn(flow, own, turn)
        except Exception as exc:  # suggestions are a help, never a reason to fail a turn
            log.warning(
                "copilot.failed",
                endpoint_id=msg.endpoint_id,
                flow=flow,
                error=type(exc).__name__,
                trace_id=msg.trace_id,
            )
            return []
        suggestions: list[dict[str, Any]] = [
            {"text": out.text, "data": out.data} for out in result.outputs
        ]
        latest = {"at": time.time(), "from": author, "traceId": msg.trace_id}
        state.extra[STATE_KEY] = result.state.to_json()
        state.extra[LATEST_KEY] = {**latest, "suggestions": suggestions}
        if settings.handover_url is None:
            return []
        return [handover.event("copilot", msg, self._base_url, **latest, suggestions=suggestions)]


async def session_suggestions(store: SqlStore, endpoint_id: str, session_id: str) -> dict[str, Any]:
    """A session's copilot as the agent sees it (the agent API and the console)."""
    return latest_suggestions(await store.load_session(endpoint_id, session_id))


def latest_suggestions(raw_state: dict[str, Any] | None) -> dict[str, Any]:
    """The agent's view of a session's copilot: its latest suggestions, if any."""
    state = SessionState.from_json(raw_state)
    latest = state.extra.get(LATEST_KEY)
    if not isinstance(latest, dict):
        latest = {"at": None, "from": None, "traceId": None, "suggestions": []}
    return {"handedOver": state.handover is not None, **latest}
