"""A real webhook receiver on loopback that records every delivery it gets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class Receiver:
    """Records deliveries; ``respond`` decides each answer's status (default 200)."""

    deliveries: list[Delivery] = field(default_factory=list)
    respond: Callable[[Delivery], int] = lambda _d: 200
    url: str = ""
    _runner: web.AppRunner | None = None
    _arrived: asyncio.Condition | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/hook"
        self._arrived = asyncio.Condition()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        delivery = Delivery(request.path, dict(request.headers), orjson.loads(await request.read()))
        status = self.respond(delivery)
        if 200 <= status < 300:
            self.deliveries.append(delivery)
            assert self._arrived is not None
            async with self._arrived:
                self._arrived.notify_all()
        return web.json_response({"ok": 200 <= status < 300}, status=status)

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Delivery]:
        """Wait until at least ``count`` deliveries were accepted."""
        assert self._arrived is not None
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: len(self.deliveries) >= count)
        return self.deliveries

    def bodies(self) -> list[dict[str, Any]]:
        return [d.body for d in self.deliveries]


@asynccontextmanager
async def serving_hook(
    handle: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> AsyncIterator[str]:
    """A loopback server answering ``POST /hook`` with ``handle``; yields its URL."""
    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    finally:
        await runner.cleanup()
