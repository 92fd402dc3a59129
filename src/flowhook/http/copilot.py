"""The agent's assist view (admin API): a session's latest copilot suggestions."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from flowhook.http.deps import services_of
from flowhook.http.routing import admin_router
from flowhook.sessions.copilot import session_suggestions

router = admin_router("/api/v1", tags=["handover"])


@router.get(
    "/endpoints/{endpoint_id}/sessions/{session_id}/copilot",
    summary="The copilot's latest suggestions for the agent",
)
async def copilot_suggestions(
    endpoint_id: str, session_id: str, request: Request
) -> dict[str, Any]:
    """``{"handedOver", "at", "from", "traceId", "suggestions": [{"text", "data"}]}``: what
    the endpoint's copilotFlow suggested on the session's latest message during a handover
    (``suggestions`` empty before the first)."""
    services = services_of(request)
    await services.endpoints.get_record(endpoint_id)  # 404 for an unknown endpoint
    latest = await session_suggestions(services.store, endpoint_id, session_id)
    return {"sessionId": session_id, **latest}
