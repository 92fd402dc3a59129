"""A scriptable webhook receiver on a real loopback socket that can go down and come back
on the same port. Records every hit (accepted or not) with its webhook-id."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

Answer = Callable[["Hit"], Awaitable[web.StreamResponse]]


@dataclass
class Hit:
    webhook_id: str
    body: dict[str, Any]
    at: float

    @property
    def session(self) -> str:
        return str(self.body["sessionId"])

    @property
    def text(self) -> str:
        return str(self.body["AIOutput"]["text"])


def status(code: int, headers: dict[str, str] | None = None) -> Answer:
    async def answer(_hit: Hit) -> web.StreamResponse:
        return web.Response(status=code, headers=headers, text=f"answer {code}")

    return answer


def hang(release: asyncio.Event) -> Answer:
    async def answer(_hit: Hit) -> web.StreamResponse:
        await release.wait()
        return web.Response(status=200)

    return answer


@dataclass
class WebhookReceiver:
    """``answer`` decides each response (200 by default); ``accepted`` are the 2xx hits."""

    answer: Answer = field(default_factory=lambda: status(200))
    hits: list[Hit] = field(default_factory=list)
    accepted: list[Hit] = field(default_factory=list)
    port: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    _runner: web.AppRunner | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> None:
        if self.port == 0:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                self.port = int(s.getsockname()[1])
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        hit = Hit(request.headers["webhook-id"], orjson.loads(await request.read()), loop.time())
        self.hits.append(hit)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            resp = await self.answer(hit)
        finally:
            self.in_flight -= 1
        if 200 <= resp.status < 300:
            self.accepted.append(hit)
        self._changed.set()
        return resp

    async def wait_until(self, done: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait (bounded) until ``done()`` holds, re-checking after each hit."""
        async with asyncio.timeout(timeout):
            while not done():
                self._changed.clear()
                await self._changed.wait()

    def unique_accepted(self) -> list[Hit]:
        """Accepted hits, a webhook-id's first delivery only (receivers drop duplicates)."""
        seen: set[str] = set()
        out = []
        for hit in self.accepted:
            if hit.webhook_id not in seen:
                seen.add(hit.webhook_id)
                out.append(hit)
        return out
