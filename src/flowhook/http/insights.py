"""Transcripts and analytics of an endpoint (admin API)."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated

from fastapi import Query, Request

from flowhook.errors import InvalidRequest
from flowhook.http.deps import services_of
from flowhook.http.pages import IdCursor, Page
from flowhook.http.routing import admin_router
from flowhook.sessions.insight_views import (
    Analytics,
    TranscriptEntry,
    analytics_view,
    transcript_entry,
)

router = admin_router("/api/v1", tags=["insights"])

SINCE = Query(default=None, description="Start (ISO 8601); default: 24 hours ago.")
UNTIL = Query(default=None, description="End, exclusive (ISO 8601); default: now.")


@router.get(
    "/endpoints/{endpoint_id}/sessions/{session_id}/transcript",
    response_model=Page[TranscriptEntry],
)
async def session_transcript(
    endpoint_id: str,
    session_id: str,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    cursor: IdCursor = None,
) -> Page[TranscriptEntry]:
    """A session's messages in and out, oldest first (text and data are null for an
    endpoint that masks sensitive logging or analytics)."""
    services = services_of(request)
    await services.endpoints.get_record(endpoint_id)  # 404 for an unknown endpoint
    rows = await services.insights.transcript(
        endpoint_id, session_id, after_id=0 if cursor is None else int(cursor), limit=limit
    )
    more = len(rows) == limit
    return Page[TranscriptEntry](
        items=[transcript_entry(r) for r in rows],
        next_cursor=str(rows[-1]["id"]) if more else None,
    )


@router.get("/endpoints/{endpoint_id}/analytics", response_model=Analytics)
async def endpoint_analytics(
    endpoint_id: str,
    request: Request,
    since: datetime | None = SINCE,
    until: datetime | None = UNTIL,
) -> Analytics:
    """Messages in and out, sessions, intents hit, handovers, delivery success rate and
    turn latency (accepted to committed, p50/p95) in a time range."""
    services = services_of(request)
    await services.endpoints.get_record(endpoint_id)
    end = time.time() if until is None else until.timestamp()
    start = end - 86_400 if since is None else since.timestamp()
    if start >= end:
        raise InvalidRequest(
            "since must be before until", field="since", expected="an earlier time"
        )
    return analytics_view(await services.insights.analytics(endpoint_id, start, end))
