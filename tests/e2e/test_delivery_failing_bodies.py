"""Outputs of a failing receiver on both backends: memory keeps no body of an output waiting
for its retry (nor of those behind it), the retry sends the stored bytes again (same
``webhook-id``, a valid signature), each session stays in order, and a healthy endpoint is
served at once next to a large backlog of a dead one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from flowhook.delivery.signing import verify
from flowhook.storage.store import SqlStore
from tests.e2e.conftest import REPO
from tests.e2e.test_delivery_bounded import seed_outbox
from tests.storage.test_due_read import add
from tests.support.receiver import serving_hook
from tests.support.server import running_server
from tests.support.webhooks import WebhookReceiver


@dataclass
class RawHit:
    webhook_id: str
    body: bytes
    headers: dict[str, str]
    status: int

    @property
    def text(self) -> str:
        return str(orjson.loads(self.body)["AIOutput"]["text"])


@dataclass
class RawReceiver:
    """Records each POST's exact bytes and headers; answers 500 until ``up``."""

    up: bool = False
    hits: list[RawHit] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        code = 200 if self.up else 500
        hit = RawHit(request.headers["webhook-id"], await request.read(), {**request.headers}, code)
        self.hits.append(hit)
        return web.Response(status=code)

    async def wait_for(self, check: Any, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, "timed out"
            await asyncio.sleep(0.01)


@asynccontextmanager
async def raw_receiver() -> AsyncIterator[RawReceiver]:
    receiver = RawReceiver()
    async with serving_hook(receiver.handle) as url:
        receiver.url = url
        yield receiver


async def test_a_retry_reads_its_body_back_and_sends_the_same_bytes_in_order(
    tmp_path: Path, db_url: str
) -> None:
    """A session's first output fails (500) and waits in memory for its retry, two more
    queue behind it: while they wait, memory holds none of their bodies. Once the receiver
    is back, the three arrive in order; every attempt of the first carries the same bytes
    and ``webhook-id``, and each attempt's signature is valid for the bytes it carried."""
    async with (
        raw_receiver() as hook,
        running_server(
            tmp_path,
            db_url,
            REPO / "flows",
            delivery_retry_schedule=[0.8] * 20,  # shorter than the park limit: kept in memory
            delivery_sweep_seconds=0.5,
        ) as server,
    ):
        dispatcher = server.services.dispatcher
        ep = await server.create_endpoint(
            name="flaky", flow="echo", webhookUrl=hook.url, signing=True
        )
        secret = ep["signingSecret"]
        for n in range(3):
            body = {"userId": "u", "sessionId": "s", "text": f"{n} " + "x" * 2000}
            code, _ = await server.post_message(ep, body)
            assert code == 202
        await hook.wait_for(lambda: dispatcher.held == 3 and len(hook.hits) >= 2)
        for _ in range(20):  # across a retry attempt, too
            assert dispatcher.body_bytes_held() == 0
            await asyncio.sleep(0.05)
        assert {h.webhook_id for h in hook.hits} == {hook.hits[0].webhook_id}
        hook.up = True
        await hook.wait_for(lambda: sum(h.status == 200 for h in hook.hits) == 3)
        await server.services.run_until_idle(10)

    first = hook.hits[0]
    attempts = [h for h in hook.hits if h.webhook_id == first.webhook_id]
    assert len(attempts) >= 3
    assert all(h.body == first.body for h in attempts)
    for hit in hook.hits:
        stamp = float(hit.headers["webhook-timestamp"])
        assert verify(secret, hit.headers, hit.body, stamp)
    delivered = [h.text.removeprefix("You said: ")[:1] for h in hook.hits if h.status == 200]
    assert delivered == ["0", "1", "2"]


async def test_a_healthy_endpoint_is_served_next_to_a_dead_ones_backlog(
    tmp_path: Path, db_url: str
) -> None:
    """A dead endpoint owes 3,000 never-attempted outputs queued behind a session head that
    waits an hour for its retry, and 500 more sessions waiting too (each sweep and each
    new output of it reads it again): a healthy endpoint's outputs still arrive within a
    second each, and nothing of the dead endpoint is attempted before its time."""
    healthy = WebhookReceiver()
    await healthy.start()
    settings: dict[str, Any] = {
        "delivery_sweep_seconds": 0.2,
        "delivery_retry_schedule": [3600],
    }
    try:
        async with running_server(tmp_path, db_url, REPO / "flows", **settings) as server:
            dead = await server.create_endpoint(
                name="dead", flow="echo", webhookUrl="http://127.0.0.1:9/hook"
            )
            ok = await server.create_endpoint(name="ok", flow="echo", webhookUrl=healthy.url)
            first_url = server.base_url
        # Written while the server is down (as a backlog it left behind at a restart).
        later = time.time() + 3600
        seed_outbox(db_url, dead["id"], 500, later)
        backlog = SqlStore(db_url)
        add(backlog, dead["id"], "stuck", 1, not_before=later, attempts=1)
        add(backlog, dead["id"], "stuck", 3000)
        backlog.close()
        async with running_server(tmp_path, db_url, REPO / "flows", **settings) as server:
            store = server.services.store
            dead, ok = (
                {**e, "endpointUrl": e["endpointUrl"].replace(first_url, server.base_url)}
                for e in (dead, ok)
            )
            for n in range(5):
                code, _ = await server.post_message(
                    dead, {"userId": "u", "sessionId": "stuck", "text": f"d{n}"}
                )
                assert code == 202
                started = time.monotonic()
                code, _ = await server.post_message(
                    ok, {"userId": "u", "sessionId": "s", "text": str(n)}
                )
                assert code == 202

                def arrived(count: int = n + 1) -> bool:
                    return len(healthy.accepted) == count

                await healthy.wait_until(arrived, timeout=5)
                assert time.monotonic() - started < 1.0
                await asyncio.sleep(0.3)  # a sweep or two with the backlog in place
            assert server.services.dispatcher.held_of(dead["id"]) == 0
            counts = await store.delivery_counts()
    finally:
        await healthy.stop()
    assert [h.text for h in healthy.accepted] == [f"You said: {n}" for n in range(5)]
    assert counts == {"delivered": 5, "pending": 3506}
