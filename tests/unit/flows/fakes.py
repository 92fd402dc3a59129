"""Real HTTP servers on 127.0.0.1 for the ``http`` and ``llm`` nodes: an orders API and an
OpenAI-compatible chat completions fake. Each records the requests it got."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

ORDERS: dict[str, dict[str, Any]] = {
    "12345": {"status": "shipped", "eta": "2024-05-03"},
    "777": {"status": "processing"},
}


@dataclass
class FakeServer:
    """``url`` is the server's base URL; ``requests`` what it received, in order.

    ``mode`` steers the replies: ``ok``, ``error`` (HTTP 500), ``hang`` (never
    answers until the server stops), ``bad`` (200 with a body that is no answer).
    """

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    mode: str = "ok"
    release: asyncio.Event = field(default_factory=asyncio.Event)
    answers: list[str] = field(default_factory=list)


async def _hang_or_fail(server: FakeServer) -> web.Response | None:
    if server.mode == "hang":
        await server.release.wait()
        return web.json_response({"late": True})
    if server.mode == "error":
        return web.json_response({"error": "boom"}, status=500)
    return None


def orders_app(server: FakeServer) -> web.Application:
    async def order(request: web.Request) -> web.Response:
        server.requests.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "headers": dict(request.headers),
                "json": await request.json() if request.can_read_body else None,
            }
        )
        failed = await _hang_or_fail(server)
        if failed is not None:
            return failed
        found = ORDERS.get(request.match_info["number"])
        if found is None:
            return web.json_response({"error": "not found"}, status=404)
        return web.json_response({"number": request.match_info["number"], **found})

    app = web.Application()
    app.router.add_route("*", "/orders/{number}", order)
    return app


def openai_app(server: FakeServer) -> web.Application:
    async def completions(request: web.Request) -> web.Response:
        body = await request.json()
        server.requests.append({"headers": dict(request.headers), "json": body})
        failed = await _hang_or_fail(server)
        if failed is not None:
            return failed
        if server.mode == "bad":
            return web.json_response({"choices": []})
        last = body["messages"][-1]["content"]
        answer = server.answers.pop(0) if server.answers else f"echo: {last}"
        return web.json_response(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": answer},
                        "finish_reason": "stop",
                    }
                ],
            }
        )

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    return app


@asynccontextmanager
async def serve(kind: str) -> AsyncIterator[FakeServer]:
    """Start the ``orders`` or ``openai`` fake on a free loopback port."""
    server = FakeServer()
    app = orders_app(server) if kind == "orders" else openai_app(server)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    server.url = f"http://127.0.0.1:{port}" + ("/v1" if kind == "openai" else "")
    try:
        yield server
    finally:
        server.release.set()
        await runner.cleanup()
