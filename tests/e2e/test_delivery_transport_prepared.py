"""What the transport keeps per target (URL, headers) never outlives the target.

A real aiohttp receiver on 127.0.0.1; each transport is the real one.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from flowhook.delivery.transport import USER_AGENT
from flowhook.delivery.types import WebhookTarget
from tests.support.transports import MakeTransport

BODY = b'{"userId":"u1","sessionId":"s1","AIOutput":{"text":"Hi","source":"bot"}}'


@dataclass
class Seen:
    base_url: str = ""
    headers: list[dict[str, str]] = field(default_factory=list)
    peers: list[object] = field(default_factory=list)


@pytest.fixture
async def seen() -> AsyncIterator[Seen]:
    rec = Seen()

    async def empty(request: web.Request) -> web.StreamResponse:
        await request.read()
        rec.headers.append(dict(request.headers))
        rec.peers.append(
            request.transport.get_extra_info("peername") if request.transport else None
        )
        return web.Response(status=204)

    async def text(request: web.Request) -> web.StreamResponse:
        await request.read()
        rec.headers.append(dict(request.headers))
        rec.peers.append(
            request.transport.get_extra_info("peername") if request.transport else None
        )
        return web.Response(status=200, text="taken")

    app = web.Application()
    app.router.add_post("/empty", empty)
    app.router.add_post("/text", text)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield rec
    await runner.cleanup()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_new_credentials_for_the_same_url_are_sent_at_once(
    seen: Seen, make_transport: MakeTransport
) -> None:
    """Attempts to one URL with the password changed in between each carry the password
    of their own target, and each attempt its own webhook-id."""
    transport = make_transport(connect_timeout=1.0, total_timeout=5.0)
    url = f"{seen.base_url}/empty"
    try:
        for password, delivery_id in (("one", "m1"), ("one", "m2"), ("two", "m3")):
            target = WebhookTarget(url, user="bot", password=password)
            result = await transport.post(target, BODY, {"webhook-id": delivery_id})
            assert result.ok
    finally:
        await transport.close()
    assert [(h["Authorization"], h["webhook-id"]) for h in seen.headers] == [
        (basic("bot", "one"), "m1"),
        (basic("bot", "one"), "m2"),
        (basic("bot", "two"), "m3"),
    ]
    assert {h["User-Agent"] for h in seen.headers} == {USER_AGENT}
    assert {h["Content-Type"] for h in seen.headers} == {"application/json"}


async def test_answers_with_and_without_a_body_keep_the_connection(
    seen: Seen, make_transport: MakeTransport
) -> None:
    """An empty answer gives an empty excerpt, a body its excerpt; either way the next
    attempt goes over the same kept-alive connection (nothing was left unread)."""
    transport = make_transport(connect_timeout=1.0, total_timeout=5.0)
    target_empty = WebhookTarget(f"{seen.base_url}/empty")
    target_text = WebhookTarget(f"{seen.base_url}/text")
    try:
        first = await transport.post(target_empty, BODY, {"webhook-id": "m1"})
        second = await transport.post(target_text, BODY, {"webhook-id": "m2"})
        third = await transport.post(target_empty, BODY, {"webhook-id": "m3"})
    finally:
        await transport.close()
    assert (first.status, first.body_excerpt) == (204, "")
    assert (second.status, second.body_excerpt) == (200, "taken")
    assert (third.status, third.body_excerpt) == (204, "")
    assert len(set(seen.peers)) == 1
