"""A receiver that takes each POST and never answers, on both backends: once its attempts
keep timing out, flowhook holds only a few connections to it (and so only a few output
bodies), not its whole share; each output waiting for a connection keeps no body; when
the receiver answers again, every output arrives, in per-session order."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from aiohttp import web

from tests.e2e.conftest import REPO
from tests.support.receiver import serving_hook
from tests.support.server import running_server

FAILING_CAP = 2
SESSIONS = 24


@dataclass
class HangingReceiver:
    """Reads each POST whole, then holds it open until the client gives up (or answers
    200 once ``up``); counts the POSTs open at once."""

    up: bool = False
    url: str = ""
    open_now: int = 0
    most_open: int = 0
    posts: int = 0
    # (webhook-id, session, text): at least once, so an id may repeat (an answer that
    # crossed the client's timeout)
    delivered: list[tuple[str, str, str]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        self.posts += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            while not self.up:
                transport = request.transport
                if transport is None or transport.is_closing():
                    return web.Response(status=500)  # the client gave up: nobody reads this
                await asyncio.sleep(0.01)
            webhook_id = request.headers["webhook-id"]
            self.delivered.append((webhook_id, body["sessionId"], body["AIOutput"]["text"]))
            return web.Response(status=200)
        finally:
            self.open_now -= 1

    async def wait_for(self, check: object, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():  # type: ignore[operator]
            assert time.monotonic() < deadline, "timed out"
            await asyncio.sleep(0.02)


@asynccontextmanager
async def hanging_receiver() -> AsyncIterator[HangingReceiver]:
    receiver = HangingReceiver()
    async with serving_hook(receiver.handle) as url:
        receiver.url = url
        yield receiver


async def test_a_hanging_receiver_gets_few_connections_and_every_output_later(
    tmp_path: Path, db_url: str
) -> None:
    """24 sessions each owe an output to a receiver that never answers (attempts time out
    after 0.3 s, retried 0.2 s later). After the first round of timeouts the receiver never
    sees more than the failing cap (2) of POSTs at once, while the outputs waiting for a
    connection keep no body in memory; once it answers, all 48 outputs arrive, each
    session's two in order (by first arrival: an answer that crossed a timeout is sent
    again)."""
    async with (
        hanging_receiver() as hook,
        running_server(
            tmp_path,
            db_url,
            REPO / "flows",
            delivery_total_timeout=0.3,
            delivery_retry_schedule=[0.2] * 200,
            delivery_max_per_failing_endpoint=FAILING_CAP,
        ) as server,
    ):
        dispatcher = server.services.dispatcher
        ep = await server.create_endpoint(name="hangs", flow="echo", webhookUrl=hook.url)
        for round_ in range(2):
            for n in range(SESSIONS):
                body = {"userId": f"u{n}", "sessionId": f"s{n}", "text": f"{round_} " + "x" * 4000}
                code, _ = await server.post_message(ep, body)
                assert code == 202
        # The first attempts go out before any has failed: up to a connection per session.
        await hook.wait_for(lambda: hook.posts >= SESSIONS + 10)
        assert hook.most_open > FAILING_CAP  # (so the cap below is the failing one)
        await hook.wait_for(lambda: dispatcher.connections_in_use <= FAILING_CAP)
        seen = hook.posts
        in_use: list[int] = []
        bodies: list[int] = []
        while hook.posts < seen + 20:
            in_use.append(dispatcher.connections_in_use)
            bodies.append(dispatcher.body_bytes_held())
            await asyncio.sleep(0.005)
        assert max(in_use) <= FAILING_CAP
        assert max(bodies) == 0
        hook.up = True
        await hook.wait_for(lambda: len({d[0] for d in hook.delivered}) >= 2 * SESSIONS)
        await server.services.run_until_idle(10)
    first: dict[str, tuple[str, str]] = {}
    for webhook_id, session, text in hook.delivered:
        first.setdefault(webhook_id, (session, text))
    for n in range(SESSIONS):
        texts = [t for s, t in first.values() if s == f"s{n}"]
        assert [t[len("You said: ") :][:1] for t in texts] == ["0", "1"]
