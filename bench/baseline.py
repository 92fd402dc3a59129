"""The baseline: the same stack with nothing else, to measure the limit beside flowhook.

A minimal Starlette app on uvicorn with the loop and HTTP parser flowhook uses
(uvloop + httptools). For each ``POST /endpoint/{token}`` it parses the JSON,
checks ``userId``/``sessionId``, builds the same output body flowhook's ``echo``
flow delivers, POSTs it to the receiver through one shared aiohttp session
(keep-alive pool) and answers ``202 {"traceId": ...}``. It stores nothing, so
this is "one inbound request + one outbound request per message" and no more.

The forward is awaited before the 202 (rather than left to a background task)
so the baseline cannot accept faster than it delivers: its delivered rate is
the stack's limit for one request in plus one request out.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def create_app(target: str) -> Starlette:
    holder: dict[str, aiohttp.ClientSession] = {}

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=1024, limit_per_host=0, keepalive_timeout=30)
        async with aiohttp.ClientSession(connector=connector) as session:
            holder["session"] = session
            yield

    async def endpoint(request: Request) -> Response:
        doc = orjson.loads(await request.body())
        user_id, session_id = doc.get("userId"), doc.get("sessionId")
        if not isinstance(user_id, str) or not isinstance(session_id, str):
            return Response(b'{"error":"userId and sessionId are required"}', status_code=400)
        trace_id = f"endpoint-httpIncomingMessage-{uuid.uuid4()}"
        out = orjson.dumps(
            {
                "userId": user_id,
                "sessionId": session_id,
                "AIOutput": {
                    "text": f"You said: {doc.get('text')}",
                    "data": doc.get("data") or {},
                    "traceId": trace_id,
                    "disableSensitiveLogging": False,
                    "source": "bot",
                },
            }
        )
        async with holder["session"].post(
            target, data=out, headers={"Content-Type": "application/json"}
        ) as resp:
            await resp.read()
        return Response(
            b'{"traceId":"' + trace_id.encode() + b'"}',
            status_code=202,
            media_type="application/json",
        )

    async def healthz(_request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    return Starlette(
        routes=[
            Route("/endpoint/{token}", endpoint, methods=["POST"]),
            Route("/healthz", healthz),
        ],
        lifespan=lifespan,
    )


def main(host: str, port: int, target: str) -> None:
    uvicorn.run(
        create_app(target),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
    )
