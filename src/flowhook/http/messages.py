"""Admin API: where accepted messages stand (pending, done, failed with the reason)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request

from flowhook.http.deps import services_of
from flowhook.http.errors import documented
from flowhook.http.routing import admin_router
from flowhook.sessions.messages import MessagePage, MessageService, MessageStatus, MessageView

router = admin_router("/api/v1", tags=["admin"])


def _service(request: Request) -> MessageService:
    return MessageService(services_of(request).store)


@router.get("/endpoints/{endpoint_id}/messages", response_model=MessagePage)
async def list_messages(
    endpoint_id: str,
    request: Request,
    status: MessageStatus | None = None,
    session_id: Annotated[str | None, Query(alias="sessionId")] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> MessagePage:
    """The endpoint's accepted messages, newest first (``status=failed``: with why)."""
    await services_of(request).endpoints.get_record(endpoint_id)
    return await _service(request).page(
        endpoint_id, status=status, session_id=session_id, cursor=cursor, limit=limit
    )


@router.get("/messages/{message_id}", response_model=MessageView, responses=documented(400))
async def get_message(message_id: int, request: Request) -> MessageView:
    return await _service(request).get(message_id)
