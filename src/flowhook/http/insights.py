"""Transcripts and analytics of an endpoint (admin API)."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from flowhook.errors import InvalidRequest
from flowhook.http.deps import require_admin, services_of

router = APIRouter(prefix="/api/v1", tags=["insights"], dependencies=[Depends(require_admin)])

AFTER = Query(default=0, ge=0, description="Only entries with a larger id (paging).")
LIMIT = Query(default=500, ge=1, le=5000)
SINCE = Query(default=None, description="Start (ISO 8601); default: 24 hours ago.")
UNTIL = Query(default=None, description="End, exclusive (ISO 8601); default: now.")


@router.get("/endpoints/{endpoint_id}/sessions/{session_id}/transcript")
async def session_transcript(
    endpoint_id: str,
    session_id: str,
    request: Request,
    after: int = AFTER,
    limit: int = LIMIT,
) -> dict[str, Any]:
    """A session's messages in and out, oldest first (text and data are null for an
    endpoint that masks sensitive logging or analytics)."""
    services = services_of(request)
    await services.endpoints.get_record(endpoint_id)  # 404 for an unknown endpoint
    items = await services.insights.transcript(endpoint_id, session_id, after_id=after, limit=limit)
    return {"items": items, "nextAfter": items[-1]["id"] if len(items) == limit else None}


@router.get("/endpoints/{endpoint_id}/analytics")
async def endpoint_analytics(
    endpoint_id: str,
    request: Request,
    since: datetime | None = SINCE,
    until: datetime | None = UNTIL,
) -> dict[str, Any]:
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
    return await services.insights.analytics(endpoint_id, start, end)
