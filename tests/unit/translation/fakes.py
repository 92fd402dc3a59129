"""A scriptable JSON API on a real loopback socket, standing in for DeepL, Google, an
OpenAI-compatible server, Rasa or any JSON NLU service. Records every request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


Handler = Callable[[Seen], Awaitable[web.StreamResponse]]


def reply(body: Any, status: int = 200) -> Handler:
    async def answer(_seen: Seen) -> web.StreamResponse:
        return web.json_response(body, status=status)

    return answer


def raw(text: str, status: int = 200) -> Handler:
    async def answer(_seen: Seen) -> web.StreamResponse:
        return web.Response(text=text, status=status, content_type="application/json")

    return answer


def hang(release: asyncio.Event) -> Handler:
    """Answers only once ``release`` is set (so a client's timeout fires first)."""

    async def answer(_seen: Seen) -> web.StreamResponse:
        await release.wait()
        return web.json_response({})

    return answer


@dataclass
class FakeApi:
    handler: Handler
    seen: list[Seen] = field(default_factory=list)
    url: str = ""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        data = await request.read()
        seen = Seen(
            request.method,
            request.path,
            dict(request.query),
            dict(request.headers),
            orjson.loads(data) if data else None,
        )
        self.seen.append(seen)
        return await self.handler(seen)


@asynccontextmanager
async def fake_api(handler: Handler) -> AsyncIterator[FakeApi]:
    """A ``FakeApi`` listening on 127.0.0.1 (a free port) until the block ends."""
    api = FakeApi(handler)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", api._handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    api.url = f"http://127.0.0.1:{port}"
    try:
        yield api
    finally:
        await runner.cleanup()


def dictionary_deepl(table: dict[str, tuple[str, str]]) -> Handler:
    """A DeepL ``/v2/translate`` that knows ``table``: text -> (its language, translation).
    Unknown texts come back unchanged, detected as English."""

    async def answer(seen: Seen) -> web.StreamResponse:
        texts = seen.body["text"]
        out = []
        for text in texts:
            language, translated = table.get(text, ("EN", text))
            out.append({"detected_source_language": language, "text": translated})
        return web.json_response({"translations": out})

    return answer
