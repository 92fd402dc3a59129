"""The agent side of a handover (admin API): start, reply, end.

Session ids are chosen by chat users and may hold any character: the URLs flowhook
hands out percent-encode them (``sessions.handover.session_url``), and the routes
take the decoded id as a ``path`` parameter, so an id with ``/`` still names exactly
one session of the endpoint in the URL. A reply or an end must name a session the
endpoint has."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.responses import Response

from flowhook.http.deps import ACCEPTED_DOC, accepted_response, request_body, services_of
from flowhook.http.routing import admin_router
from flowhook.sessions import handover

router = admin_router(
    "/api/v1/endpoints/{endpoint_id}/sessions/{session_id:path}/handover", tags=["handover"]
)


def _body(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    schema = {"type": "object", "required": required, "properties": properties}
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        },
        "responses": {"202": ACCEPTED_DOC},
    }


_USER_ID = {"type": "string", "minLength": 1, "maxLength": 1024, "description": "The user."}
_START = _body(
    ["userId"],
    {"userId": _USER_ID, "data": {"type": "object", "description": "Kept, e.g. a reason."}},
)
_AGENT = _body(
    ["userId"],
    {
        "userId": _USER_ID,
        "text": {"type": "string", "description": "text and/or data must be given."},
        "data": {"type": "object"},
    },
)
_AGENT["requestBody"]["content"]["application/json"]["schema"]["anyOf"] = [
    {"required": ["text"], "properties": {"text": {"minLength": 1}}},
    {"required": ["data"]},
]
_END = _body(
    ["userId"],
    {
        "userId": _USER_ID,
        "data": {
            "type": "object",
            "properties": {"resumeAt": {"type": "string", "description": "A node id."}},
        },
    },
)


async def _queue(request: Request, endpoint_id: str, session_id: str, kind: str) -> Response:
    body = await request_body(request)
    services = services_of(request)
    if kind != handover.START:
        await handover.require_session(services.store, endpoint_id, session_id)
    inbox = services.inbox
    accepted = await inbox.accept_for_session(endpoint_id, session_id, body, kind)
    return accepted_response(accepted.trace_id)


@router.post(
    "",
    status_code=202,
    response_class=Response,
    summary="Hand the session over",
    openapi_extra=_START,
)
async def start_handover(endpoint_id: str, session_id: str, request: Request) -> Response:
    """Body ``{"userId", "data": {...}}``: the session is handed over (data is kept in the
    handover record, e.g. a reason); the provider gets ``handover.started``."""
    return await _queue(request, endpoint_id, session_id, handover.START)


@router.post(
    "/messages",
    status_code=202,
    response_class=Response,
    summary="An agent's reply to the user",
    openapi_extra=_AGENT,
)
async def agent_message(endpoint_id: str, session_id: str, request: Request) -> Response:
    """Body ``{"userId", "text"?, "data"?}``: delivered to the user's webhook with
    ``source: "agent"``, in the session's order."""
    return await _queue(request, endpoint_id, session_id, handover.AGENT)


@router.post(
    "/end",
    status_code=202,
    response_class=Response,
    summary="End the handover",
    openapi_extra=_END,
)
async def end_handover(endpoint_id: str, session_id: str, request: Request) -> Response:
    """Body ``{"userId", "data": {"resumeAt"?: "<node>"}}``: the flow answers the user
    again; with ``resumeAt`` it takes over at once at that node."""
    return await _queue(request, endpoint_id, session_id, handover.END)
