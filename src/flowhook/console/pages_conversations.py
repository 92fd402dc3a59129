"""Conversations: an endpoint's sessions, a live transcript (server-sent events) and the
agent's side of a handover; and Try it, a chat through the endpoint's real ingress."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.responses import Response, StreamingResponse

from flowhook.console.queries import ConsoleQueries
from flowhook.console.web import SECURITY_HEADERS, Page, page
from flowhook.errors import InvalidRequest, NotFound
from flowhook.sessions import handover
from flowhook.sessions.copilot import session_suggestions

POLL_SECONDS = 0.4
STREAM_SECONDS = 30.0  # then the browser reconnects (EventSource does so by itself)
MAX_SESSION_ID = 1000


def _session_param(pg: Page) -> str:
    session_id = pg.query("session") or pg.form.get("session", "")
    if not session_id or len(session_id) > MAX_SESSION_ID:
        raise InvalidRequest(
            "choose a session", field="session", expected="a session id (1..1000 characters)"
        )
    return session_id


@page("/console/endpoints/{endpoint_id}/conversations")
async def sessions(pg: Page) -> Response:
    services = pg.services
    view = await services.endpoints.get(pg.param("endpoint_id"))
    search = pg.query("q").strip()[:MAX_SESSION_ID]
    found = await ConsoleQueries(services.store).sessions(view.id, search=search)
    return pg.render(
        "conversations.html",
        endpoint=view,
        sessions=found,
        search=search,
        tab="conversations",
        title=f"{view.name} · conversations",
    )


@page("/console/endpoints/{endpoint_id}/transcript")
async def transcript(pg: Page) -> Response:
    services = pg.services
    view = await services.endpoints.get(pg.param("endpoint_id"))
    session_id = _session_param(pg)
    summary = await ConsoleQueries(services.store).session(view.id, session_id)
    entries = await services.insights.transcript(view.id, session_id, limit=500)
    copilot = None
    if view.copilot_flow and summary is not None and summary.handover:
        copilot = await session_suggestions(services.store, view.id, session_id)
    return pg.render(
        "transcript.html",
        endpoint=view,
        session_id=session_id,
        summary=summary,
        entries=entries,
        last_id=entries[-1]["id"] if entries else 0,
        copilot=copilot,
        tab="conversations",
        title=f"{view.name} · {session_id[:40]}",
    )


@page("/console/endpoints/{endpoint_id}/events")
async def events(pg: Page) -> Response:
    """Server-sent events for one session: ``transcript`` (new entries), ``state`` (turns,
    handover), ``copilot`` (the latest suggestions, when the endpoint has a copilotFlow)
    and, with ``deliveries=1``, ``deliveries`` (the outputs sent to the webhook)."""
    services = pg.services
    view = await services.endpoints.get(pg.param("endpoint_id"))
    session_id = _session_param(pg)
    resume = pg.request.headers.get("last-event-id") or pg.query("after") or "0"
    after = int(resume) if resume.isdigit() else 0
    with_deliveries = pg.query("deliveries") == "1"
    queries = ConsoleQueries(services.store)
    request = pg.request

    async def stream() -> AsyncIterator[bytes]:
        nonlocal after
        last_state: Any = ()
        last_deliveries: Any = ()
        last_copilot: Any = ()
        yield b"retry: 1000\n\n"
        deadline = time.monotonic() + STREAM_SECONDS
        while time.monotonic() < deadline and not await request.is_disconnected():
            entries = await services.insights.transcript(
                view.id, session_id, after_id=after, limit=200
            )
            if entries:
                after = entries[-1]["id"]
                yield _event("transcript", entries, event_id=str(after))
            summary = await queries.session(view.id, session_id)
            state = (
                None
                if summary is None
                else {
                    "turns": summary.turns,
                    "handover": summary.handover,
                    "updatedAt": summary.updated_at,
                }
            )
            if state != last_state:
                last_state = state
                yield _event("state", state)
            if view.copilot_flow:
                latest = await session_suggestions(services.store, view.id, session_id)
                if latest != last_copilot:
                    last_copilot = latest
                    yield _event("copilot", latest)
            if with_deliveries:
                sent = await queries.session_deliveries(view.id, session_id)
                if sent != last_deliveries:
                    last_deliveries = sent
                    yield _event("deliveries", sent)
            await asyncio.sleep(POLL_SECONDS)

    headers = {**SECURITY_HEADERS, "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


def _event(name: str, data: Any, event_id: str | None = None) -> bytes:
    head = f"event: {name}\n" + (f"id: {event_id}\n" if event_id else "")
    return head.encode() + b"data: " + orjson.dumps(data) + b"\n\n"


# -- the agent's side of a handover -----------------------------------------------------------


async def _queue(pg: Page, kind: str, body: dict[str, Any]) -> str:
    endpoint_id = pg.param("endpoint_id")
    session_id = _session_param(pg)
    summary = await ConsoleQueries(pg.services.store).session(endpoint_id, session_id)
    if summary is None:
        raise NotFound(f"no session {session_id!r} on this endpoint", field="session")
    await pg.services.inbox.accept_for_session(
        endpoint_id, session_id, orjson.dumps({"userId": summary.user_id, **body}), kind
    )
    return f"/console/endpoints/{endpoint_id}/transcript?session=" + _quote(session_id)


@page("/console/endpoints/{endpoint_id}/handover/reply", change=True)
async def agent_reply(pg: Page) -> Response:
    text = pg.form.get("text", "").strip()
    if not text:
        raise InvalidRequest("write a reply", field="text", expected="some text")
    return pg.redirect(await _queue(pg, handover.AGENT, {"text": text}), "sent")


@page("/console/endpoints/{endpoint_id}/handover/start", change=True)
async def start_handover(pg: Page) -> Response:
    data = {"reason": "taken over in the console"}
    return pg.redirect(await _queue(pg, handover.START, {"data": data}), "handed-over")


@page("/console/endpoints/{endpoint_id}/handover/end", change=True)
async def end_handover(pg: Page) -> Response:
    resume_at = pg.form.get("resumeAt", "").strip()
    data = {"resumeAt": resume_at} if resume_at else {}
    return pg.redirect(await _queue(pg, handover.END, {"data": data}), "handed-back")


# -- Try it -----------------------------------------------------------------------------------


@page("/console/endpoints/{endpoint_id}/try")
async def try_it(pg: Page) -> Response:
    view = await pg.services.endpoints.get(pg.param("endpoint_id"))
    suffix = secrets.token_hex(4)
    return pg.render(
        "try.html",
        endpoint=view,
        tab="try",
        title=f"{view.name} · try it",
        user_id=f"console-{suffix}",
        session_id=f"try-{suffix}",
        ingress_path=f"/endpoint/{view.url_token}",
    )


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")
