"""Delivery over real sockets: each transport + Dispatcher against a local aiohttp server.

Every test runs a real HTTP server on 127.0.0.1 (ephemeral port) and uses tiny retry
schedules, so the file stays within a few seconds.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from flowhook.delivery.dispatcher import Dispatcher
from flowhook.delivery.retry import RetryPolicy
from flowhook.delivery.testing import RecordingLedger
from flowhook.delivery.types import PendingDelivery, WebhookTarget
from flowhook.tools.listen import serve_listener
from tests.support.transports import MakeTransport

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
BODY = b'{"userId":"u1","sessionId":"s1","AIOutput":{"text":"Hi there","source":"bot"}}'


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    """A real webhook receiver; ``answers`` gives one handler per hit, the last repeats."""

    base_url: str = ""
    hits: list[Hit] = field(default_factory=list)
    answers: list[Handler] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.hits.append(Hit(request.path, dict(request.headers), body, time.monotonic()))
        index = min(len(self.hits), len(self.answers)) - 1
        if index < 0:
            return web.json_response({"ok": True})
        return await self.answers[index](request)

    def hits_on(self, path: str) -> list[Hit]:
        return [h for h in self.hits if h.path == path]


def status(code: int, headers: dict[str, str] | None = None) -> Handler:
    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(status=code, headers=headers, text=f"status {code}")

    return answer


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", rec.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield rec
    await runner.cleanup()


def pending(outbox_id: int = 1, seq: int = 1) -> PendingDelivery:
    return PendingDelivery(outbox_id, f"dlv-{outbox_id}", "ep1", "s1", seq, BODY)


async def deliver(
    items: list[PendingDelivery],
    target: WebhookTarget,
    make_transport: MakeTransport,
    *,
    schedule: tuple[float, ...] = (),
    total_timeout: float = 5.0,
    max_retry_after: float = 3600.0,
) -> RecordingLedger:
    """Run a real dispatcher until every item is settled; return what it recorded."""
    ledger = RecordingLedger()

    async def resolve(endpoint_id: str) -> WebhookTarget | None:
        return target

    dispatcher = Dispatcher(
        make_transport(connect_timeout=1.0, total_timeout=total_timeout),
        resolve,
        ledger,
        RetryPolicy(schedule, jitter=0.0, max_retry_after=max_retry_after),
    )
    await dispatcher.start()
    try:
        dispatcher.submit(items)
        await dispatcher.run_until_idle(timeout=10)
    finally:
        await dispatcher.stop()
    return ledger


async def test_basic_auth_body_and_headers_arrive_exactly(
    receiver: Receiver, make_transport: MakeTransport
) -> None:
    """The receiver gets the exact JSON body, Basic Auth of the configured user/password,
    Content-Type application/json and a webhook-id equal to the delivery id."""
    target = WebhookTarget(f"{receiver.base_url}/hook", user="bot", password="s3cr:et")
    ledger = await deliver([pending(7)], target, make_transport)

    (hit,) = receiver.hits
    assert hit.body == BODY
    assert hit.headers["Authorization"] == "Basic " + base64.b64encode(b"bot:s3cr:et").decode()
    assert hit.headers["Content-Type"] == "application/json"
    assert hit.headers["webhook-id"] == "dlv-7"
    (done,) = ledger.of_kind("delivered")
    assert done.attempt.status == 200
    assert done.attempt.body_excerpt == '{"ok": true}'


async def test_no_credentials_means_no_authorization_header(
    receiver: Receiver, make_transport: MakeTransport
) -> None:
    """Without user and password configured, no Authorization header is sent."""
    await deliver([pending()], WebhookTarget(f"{receiver.base_url}/hook"), make_transport)
    assert "Authorization" not in receiver.hits[0].headers


async def test_server_error_is_retried_until_delivered(
    receiver: Receiver, make_transport: MakeTransport
) -> None:
    """500 then 200: the same delivery (same webhook-id) is sent again and recorded delivered."""
    receiver.answers = [status(500), status(200)]
    ledger = await deliver(
        [pending()], WebhookTarget(f"{receiver.base_url}/hook"), make_transport, schedule=(0.01,)
    )

    assert [h.headers["webhook-id"] for h in receiver.hits] == ["dlv-1", "dlv-1"]
    (retry,) = ledger.of_kind("retry_later")
    assert retry.attempt.status == 500
    assert retry.attempt.body_excerpt == "status 500"
    assert len(ledger.of_kind("delivered")) == 1


async def test_redirect_is_a_failure_and_not_followed(
    receiver: Receiver, make_transport: MakeTransport
) -> None:
    """A 301 is recorded as a failed attempt; the Location is never requested."""
    receiver.answers = [status(301, {"Location": "/elsewhere"})]
    ledger = await deliver(
        [pending()], WebhookTarget(f"{receiver.base_url}/hook", "u", "p"), make_transport
    )

    assert [h.path for h in receiver.hits] == ["/hook"]
    assert receiver.hits_on("/elsewhere") == []
    (failed,) = ledger.of_kind("failed")
    assert failed.attempt.status == 301
    assert failed.attempt.error == "HTTP 301"


async def test_retry_after_on_429_is_honoured(
    receiver: Receiver, make_transport: MakeTransport
) -> None:
    """429 with Retry-After: 1 delays the retry by about 1 s although the schedule says 10 ms."""
    receiver.answers = [status(429, {"Retry-After": "1"}), status(200)]
    ledger = await deliver(
        [pending()], WebhookTarget(f"{receiver.base_url}/hook"), make_transport, schedule=(0.01,)
    )

    first, second = receiver.hits
    assert second.at - first.at >= 0.9
    (retry,) = ledger.of_kind("retry_later")
    assert retry.attempt.retry_after == 1.0
    assert len(ledger.of_kind("delivered")) == 1


async def test_retry_after_is_capped_by_max_retry_after(
    receiver: Receiver, make_transport: MakeTransport
) -> None:
    """A receiver asking for an hour gets the configured maximum (here 50 ms), not an hour."""
    receiver.answers = [status(503, {"Retry-After": "3600"}), status(200)]
    ledger = await deliver(
        [pending()],
        WebhookTarget(f"{receiver.base_url}/hook"),
        make_transport,
        schedule=(0.01,),
        max_retry_after=0.05,
    )
    assert len(receiver.hits) == 2
    assert len(ledger.of_kind("delivered")) == 1


async def test_hanging_receiver_hits_the_total_timeout(
    receiver: Receiver, make_transport: MakeTransport
) -> None:
    """A receiver that never answers ends the attempt after total_timeout: no status, 'timeout'."""
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.StreamResponse:
        await release.wait()
        return web.Response()

    receiver.answers = [hang]
    started = time.monotonic()
    try:
        ledger = await deliver(
            [pending()],
            WebhookTarget(f"{receiver.base_url}/hook"),
            make_transport,
            total_timeout=0.3,
        )
    finally:
        release.set()
    assert time.monotonic() - started < 3
    (failed,) = ledger.of_kind("failed")
    assert failed.attempt.status is None
    assert failed.attempt.error == "timeout (no complete answer within 0.3s)"


async def test_connection_refused_error_names_no_secret(make_transport: MakeTransport) -> None:
    """An unreachable webhook gives a short connection error without the password or URL."""
    with socket.socket() as sock:  # find a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for target in (
        WebhookTarget(f"http://127.0.0.1:{port}/hook", user="bot", password="hunter2"),
        WebhookTarget(f"http://bot:hunter2@127.0.0.1:{port}/hook"),
        WebhookTarget(f"http://x:hunter2@127.0.0.1:{port}/hook", user="bot", password="pw"),
    ):
        ledger = await deliver([pending()], target, make_transport)
        (failed,) = ledger.of_kind("failed")
        error = failed.attempt.error or ""
        assert failed.attempt.status is None
        assert error.startswith("connection error:")
        assert "hunter2" not in error


async def test_order_per_session_holds_over_real_http(
    receiver: Receiver, make_transport: MakeTransport
) -> None:
    """Five outputs of one session arrive in seq order even when the second one fails first."""
    receiver.answers = [status(200), status(502), status(200)]
    items = [pending(outbox_id=i, seq=i) for i in (5, 3, 1, 4, 2)]
    await deliver(
        items, WebhookTarget(f"{receiver.base_url}/hook"), make_transport, schedule=(0.01,)
    )
    assert [h.headers["webhook-id"] for h in receiver.hits] == [
        "dlv-1",
        "dlv-2",
        "dlv-2",
        "dlv-3",
        "dlv-4",
        "dlv-5",
    ]


# -- flowhook listen ---------------------------------------------------------------------


@pytest.fixture
async def listener() -> AsyncIterator[tuple[str, io.StringIO]]:
    out = io.StringIO()
    ready = asyncio.Event()
    task = asyncio.create_task(serve_listener("127.0.0.1", 0, "bot", "s3cret", out, ready))
    async with asyncio.timeout(5):
        await ready.wait()
    match = re.search(r"listening on (http://127\.0\.0\.1:\d+/)", out.getvalue())
    assert match, out.getvalue()
    yield match.group(1), out
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_listener_prints_deliveries_with_correct_auth(
    listener: tuple[str, io.StringIO], make_transport: MakeTransport
) -> None:
    """flowhook listen accepts a delivery with the right Basic Auth, answers 200 {"ok": true}
    and prints path, webhook-id and the pretty JSON."""
    url, out = listener
    ledger = await deliver(
        [pending(3)], WebhookTarget(f"{url}inbox", "bot", "s3cret"), make_transport
    )
    (done,) = ledger.of_kind("delivered")
    assert done.attempt.body_excerpt == '{"ok": true}'
    printed = out.getvalue()
    assert "POST /inbox" in printed
    assert "webhook-id: dlv-3" in printed
    assert '  "AIOutput": {\n    "text": "Hi there",' in printed


async def test_listener_rejects_wrong_password(
    listener: tuple[str, io.StringIO], make_transport: MakeTransport
) -> None:
    """Wrong credentials get 401 with a JSON error, and the body is not printed."""
    url, out = listener
    ledger = await deliver(
        [pending()], WebhookTarget(f"{url}inbox", "bot", "wrong"), make_transport
    )
    (failed,) = ledger.of_kind("failed")
    assert failed.attempt.status == 401
    assert '"error": "unauthorized"' in failed.attempt.body_excerpt
    assert "Hi there" not in out.getvalue()
    assert "rejected" in out.getvalue()


async def test_listener_without_auth_header_gets_401_challenge(
    listener: tuple[str, io.StringIO],
) -> None:
    """A POST with no Authorization header is refused with 401 and a Basic challenge."""
    async with (
        aiohttp.ClientSession() as client,
        client.post(f"{listener[0]}x", data=b"{}") as resp,
    ):
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"].startswith("Basic ")
        assert await resp.json() == {"ok": False, "error": "unauthorized"}


async def test_listener_without_credentials_accepts_anything_and_shows_non_json() -> None:
    """With no user/password configured any POST is accepted; a non-JSON body is shown raw."""
    out = io.StringIO()
    ready = asyncio.Event()
    task = asyncio.create_task(serve_listener("127.0.0.1", 0, None, None, out, ready))
    try:
        async with asyncio.timeout(5):
            await ready.wait()
        match = re.search(r"listening on (http://\S+/)", out.getvalue())
        assert match
        async with (
            aiohttp.ClientSession() as client,
            client.post(f"{match.group(1)}any/path?q=1", data=b"plain text") as resp,
        ):
            assert resp.status == 200
            assert await resp.json() == {"ok": True}
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert "POST /any/path?q=1" in out.getvalue()
    assert "(not JSON, 10 bytes)\nplain text" in out.getvalue()
