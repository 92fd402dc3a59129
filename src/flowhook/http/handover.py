"""The agent side of a handover (admin API): start, reply, end.

Session ids are chosen by chat users and may hold any character: the URLs flowhook
hands out percent-encode them (``sessions.handover.session_url``), and the routes
take the decoded id as a ``path`` parameter, so an id with ``/`` still names exactly
one session of the endpoint in the URL. A reply or an end must name a session the
endpoint has."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from flowhook.http.deps import accepted_response, request_body, require_admin, services_of
from flowhook.sessions import handover

router = APIRouter(
    prefix="/api/v1/endpoints/{endpoint_id}/sessions/{session_id:path}/handover",
    tags=["handover"],
    dependencies=[Depends(require_admin)],
)


async def _queue(request: Request, endpoint_id: str, session_id: str, kind: str) -> Response:
    body = await request_body(request)
    services = services_of(request)
    if kind != handover.START:
        await handover.require_session(services.store, endpoint_id, session_id)
    inbox = services.inbox
    accepted = await inbox.accept_for_session(endpoint_id, session_id, body, kind)
    return accepted_response(accepted.trace_id)


@router.post("", status_code=202, response_class=Response, summary="Hand the session over")
async def start_handover(endpoint_id: str, session_id: str, request: Request) -> Response:
    """Body ``{"userId", "data": {...}}``: the session is handed over (data is kept in the
    handover record, e.g. a reason); the provider gets ``handover.started``."""
    return await _queue(request, endpoint_id, session_id, handover.START)


@router.post(
    "/messages", status_code=202, response_class=Response, summary="An agent's reply to the user"
)
async def agent_message(endpoint_id: str, session_id: str, request: Request) -> Response:
    """Body ``{"userId", "text"?, "data"?}``: delivered to the user's webhook with
    ``source: "agent"``, in the session's order."""
    return await _queue(request, endpoint_id, session_id, handover.AGENT)


@router.post("/end", status_code=202, response_class=Response, summary="End the handover")
async def end_handover(endpoint_id: str, session_id: str, request: Request) -> Response:
    """Body ``{"userId", "data": {"resumeAt"?: "<node>"}}``: the flow answers the user
    again; with ``resumeAt`` it takes over at once at that node."""
    return await _queue(request, endpoint_id, session_id, handover.END)
