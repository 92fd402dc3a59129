"""What each delivery transport sends and how it takes odd answers, on real sockets.

The receiver is a raw asyncio server (``tests.support.raw_http``) whose answers are
scripted byte by byte: chunked and length-less answers, ``Connection: close``, answers
that never end or never start, malformed ones, connections closed at odd moments.
Tests of behaviour both transports must have run against each (``make_transport``);
the ones about the lean transport's own choices say so.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
from collections.abc import AsyncIterator

import pytest

from flowhook.delivery.lean_transport import LeanTransport
from flowhook.delivery.transport import USER_AGENT
from flowhook.delivery.types import AttemptResult, Transport, WebhookTarget
from tests.support.raw_http import OK, Exchange, RawReceiver, answer, headers_of
from tests.support.transports import TRANSPORTS, MakeTransport

BODY = b'{"userId":"u1","sessionId":"s1","AIOutput":{"text":"Hi","source":"bot"}}'


@pytest.fixture
async def raw() -> AsyncIterator[RawReceiver]:
    rec = RawReceiver()
    await rec.start()
    yield rec
    await rec.stop()


@contextlib.asynccontextmanager
async def using(transport: Transport) -> AsyncIterator[Transport]:
    try:
        yield transport
    finally:
        await transport.close()


async def post(transport: Transport, url: str, delivery_id: str = "m1") -> AttemptResult:
    return await transport.post(WebhookTarget(url), BODY, {"webhook-id": delivery_id})


async def closed(raw: RawReceiver, index: int = 0) -> None:
    """Until the receiver saw connection ``index`` closed (bounded)."""
    async with asyncio.timeout(5):
        await raw.connections[index].closed.wait()


# -- what is sent ------------------------------------------------------------------------


async def test_request_head_carries_host_with_port_auth_and_lengths(
    raw: RawReceiver, make_transport: MakeTransport
) -> None:
    """The request line has the path and query; Host names host and port; User-Agent,
    Content-Type, Content-Length and Basic Auth are there; the body arrives exactly."""
    async with using(make_transport(1.0, 5.0)) as transport:
        result = await transport.post(
            WebhookTarget(raw.url("/in/hook?x=1&y=%20z"), user="bot", password="pa:ss"),
            BODY,
            {"webhook-id": "m1", "webhook-timestamp": "1700000000"},
        )
    assert result.ok, result
    (request,) = raw.requests
    head, _, body = request.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /in/hook?x=1&y=%20z HTTP/1.1\r\n")
    headers = headers_of(head + b"\r\n\r\n")
    assert headers["host"] == f"127.0.0.1:{raw.port}"
    assert headers["user-agent"] == USER_AGENT
    assert headers["content-type"] == "application/json"
    assert headers["content-length"] == str(len(BODY))
    assert headers["authorization"] == "Basic " + base64.b64encode(b"bot:pa:ss").decode()
    assert headers["webhook-id"] == "m1"
    assert headers["webhook-timestamp"] == "1700000000"
    assert body == BODY


async def test_lean_transport_asks_for_no_compression(raw: RawReceiver) -> None:
    """The lean transport sends no Accept-Encoding: answers come uncompressed, so the
    recorded excerpt is readable text without a decompressor."""
    async with using(LeanTransport(1.0, 5.0)) as transport:
        assert (await post(transport, raw.url())).ok
    assert "accept-encoding" not in headers_of(raw.requests[0])


async def test_ipv6_literal_url_is_reached_with_bracketed_host(
    make_transport: MakeTransport,
) -> None:
    """http://[::1]:port/ connects over IPv6 and sends Host: [::1]:port."""
    rec = RawReceiver(host="::1")
    try:
        await rec.start()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    try:
        async with using(make_transport(1.0, 5.0)) as transport:
            result = await post(transport, rec.url())
        assert result.ok
        assert headers_of(rec.requests[0])["host"] == f"[::1]:{rec.port}"
    finally:
        await rec.stop()


async def test_line_breaks_in_attempt_headers_never_reach_the_wire(
    raw: RawReceiver, make_transport: MakeTransport
) -> None:
    """A header value holding CR/LF makes the attempt fail as an invalid request before
    anything is sent; it can never add a header line."""
    async with using(make_transport(1.0, 5.0)) as transport:
        for value in ("x\r\nX-Injected: 1", "x\nX-Injected: 1", "x\rX-Injected: 1"):
            result = await transport.post(WebhookTarget(raw.url()), BODY, {"webhook-id": value})
            assert result.status is None
            assert "invalid webhook request" in (result.error or ""), result.error
    assert all(b"X-Injected" not in r for r in raw.requests)


async def test_line_breaks_in_url_and_credentials_add_no_header(
    raw: RawReceiver, make_transport: MakeTransport
) -> None:
    """CR/LF in the URL's path or query, or in user and password, never become a header
    of their own: credentials travel base64-encoded, and the URL parser drops or
    percent-encodes line breaks."""
    async with using(make_transport(1.0, 5.0)) as transport:
        await transport.post(
            WebhookTarget(raw.url("/a\r\nX-Injected: 1/b?q=\r\nX-Injected: 2")), BODY, {}
        )
        await transport.post(
            WebhookTarget(raw.url(), user="u\r\nX-Injected: 3", password="p\r\nX-Injected: 4"),
            BODY,
            {},
        )
    for request in raw.requests:
        assert "x-injected" not in headers_of(request.partition(b"\r\n\r\n")[0] + b"\r\n\r\n")


# -- answers -----------------------------------------------------------------------------


async def test_chunked_answer_gives_its_excerpt_and_keeps_the_connection(
    raw: RawReceiver, make_transport: MakeTransport
) -> None:
    """A chunked answer is read to its end: the excerpt joins the chunks and the next
    attempt goes over the same connection."""
    raw.script = answer(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )
    async with using(make_transport(1.0, 5.0)) as transport:
        first = await post(transport, raw.url(), "m1")
        second = await post(transport, raw.url(), "m2")
    assert first.body_excerpt == second.body_excerpt == "hello world"
    assert len(raw.connections) == 1


async def test_connection_close_answer_is_not_reused(
    raw: RawReceiver, make_transport: MakeTransport
) -> None:
    """An answer with Connection: close ends that connection; the next attempt opens a
    new one and succeeds."""
    raw.script = answer(
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", keep=False
    )
    async with using(make_transport(1.0, 5.0)) as transport:
        results = [await post(transport, raw.url(), f"m{i}") for i in range(2)]
    assert all(r.ok and r.body_excerpt == "ok" for r in results)
    assert len(raw.connections) == 2


async def test_http_1_0_answer_without_length_ends_with_the_connection(
    raw: RawReceiver, make_transport: MakeTransport
) -> None:
    """An HTTP/1.0 answer without Content-Length is read until the server closes; its
    status and body count, and the next attempt uses a new connection."""
    raw.script = answer(b"HTTP/1.0 202 Accepted\r\n\r\ntaken", keep=False)
    async with using(make_transport(1.0, 5.0)) as transport:
        results = [await post(transport, raw.url(), f"m{i}") for i in range(2)]
    assert [(r.status, r.body_excerpt) for r in results] == [(202, "taken")] * 2
    assert len(raw.connections) == 2


async def test_interim_100_continue_is_skipped(
    raw: RawReceiver, make_transport: MakeTransport
) -> None:
    """An unasked-for 100 Continue before the real answer is passed over."""
    raw.script = answer(b"HTTP/1.1 100 Continue\r\n\r\n" + OK)
    async with using(make_transport(1.0, 5.0)) as transport:
        result = await post(transport, raw.url())
    assert result.status == 200


async def test_huge_answer_is_cut_at_the_excerpt_and_its_connection_closed(
    raw: RawReceiver, make_transport: MakeTransport
) -> None:
    """A 2xx announcing 64 MiB: the attempt ends with a 1 KiB excerpt without reading the
    rest, the connection is closed (its rest unread), and the next attempt opens another."""
    total = 64 * 1024 * 1024
    written = 0

    async def huge(exchange: Exchange) -> None:
        nonlocal written
        exchange.writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % total)
        chunk = b"x" * 65536
        while written < total:
            exchange.writer.write(chunk)
            written += len(chunk)
            await exchange.writer.drain()

    raw.script = huge
    async with using(make_transport(1.0, 10.0)) as transport:
        result = await post(transport, raw.url(), "m1")
        await closed(raw, 0)
        raw.script = answer(OK)
        again = await post(transport, raw.url(), "m2")
    assert result.status == 200
    assert result.body_excerpt == "x" * 1024
    assert written < total
    assert again.ok
    assert len(raw.connections) == 2


async def test_endless_chunked_answer_ends_at_the_excerpt(
    raw: RawReceiver, make_transport: MakeTransport
) -> None:
    """A chunked answer that never ends still gives its status and 1 KiB excerpt."""

    async def endless(exchange: Exchange) -> None:
        exchange.writer.write(b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n")
        while True:
            exchange.writer.write(b"100\r\n" + b"y" * 256 + b"\r\n")
            await exchange.writer.drain()

    raw.script = endless
    async with using(make_transport(1.0, 10.0)) as transport:
        result = await post(transport, raw.url())
    assert (result.status, result.body_excerpt) == (500, "y" * 1024)
    await closed(raw)


async def test_slowloris_answer_hits_the_total_timeout(
    raw: RawReceiver, make_transport: MakeTransport
) -> None:
    """An answer trickling in a byte at a time never completes: the attempt ends at the
    total timeout with the timeout text and no status."""

    async def trickle(exchange: Exchange) -> None:
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"z" * 10_000:
            exchange.writer.write(bytes([byte]))
            await exchange.writer.drain()
            await asyncio.sleep(0.02)

    raw.script = trickle
    async with using(make_transport(1.0, 0.5)) as transport:
        result = await post(transport, raw.url())
    assert result.status is None
    assert result.error == "timeout (no complete answer within 0.5s)"


@pytest.mark.parametrize(
    "raw_answer",
    [
        b"HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon in this line\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello",
        b"SMTP ready\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 200_000 + b"\r\n\r\n",
    ],
    ids=["bad-status", "garbage-header", "two-lengths", "not-http", "endless-header"],
)
async def test_malformed_answer_is_a_connection_error(
    raw: RawReceiver, make_transport: MakeTransport, raw_answer: bytes
) -> None:
    """Answers that are no valid HTTP/1.1 (bad status line, header line without colon,
    conflicting lengths, another protocol, a header longer than any limit) give no status
    and a 'connection error' text."""
    raw.script = answer(raw_answer)
    async with using(make_transport(1.0, 5.0)) as transport:
        result = await post(transport, raw.url())
    assert result.status is None, result
    assert (result.error or "").startswith("connection error:"), result


# -- connections -------------------------------------------------------------------------


async def test_receiver_closing_an_idle_connection_costs_no_attempt(
    raw: RawReceiver, make_transport: MakeTransport
) -> None:
    """A receiver that closes a kept-alive connection once it is idle: the next attempt
    notices before sending and succeeds over a new connection."""
    raw.script = answer(OK, keep=False)  # 200 keep-alive, then closed by the server
    async with using(make_transport(1.0, 5.0)) as transport:
        first = await post(transport, raw.url(), "m1")
        await closed(raw, 0)
        await asyncio.sleep(0.05)  # the client's loop takes the FIN in
        second = await post(transport, raw.url(), "m2")
    assert first.ok
    assert second.ok
    assert [len(c.requests) for c in raw.connections] == [1, 1]


async def test_lean_stale_reused_connection_is_retried_once_on_a_fresh_one(
    raw: RawReceiver,
) -> None:
    """Lean transport: a reused connection that the server closes when the request
    arrives, before any byte of an answer, is the keep-alive race: the same request (same
    webhook-id) goes once more over a new connection within the attempt, which succeeds."""

    async def close_second(exchange: Exchange) -> None:
        if exchange.conn.index == 0 and exchange.number == 1:
            exchange.keep = False  # closed without a byte of answer
        else:
            exchange.writer.write(OK)

    raw.script = close_second
    async with using(LeanTransport(1.0, 5.0)) as transport:
        first = await post(transport, raw.url(), "m1")
        second = await post(transport, raw.url(), "m2")
    assert first.ok
    assert second.ok
    ids = [[headers_of(r)["webhook-id"] for r in c.requests] for c in raw.connections]
    assert ids == [["m1", "m2"], ["m2"]]


async def test_lean_fresh_connection_closed_unanswered_is_not_retried(raw: RawReceiver) -> None:
    """Lean transport: on a connection opened for this attempt, a close before any answer
    is the attempt's failure (no second send): 'connection error: server disconnected'."""
    raw.script = answer(b"", keep=False)
    async with using(LeanTransport(1.0, 5.0)) as transport:
        result = await post(transport, raw.url())
    assert result.status is None
    assert result.error == "connection error: server disconnected"
    assert len(raw.requests) == 1


async def test_lean_answer_cut_short_on_a_reused_connection_is_not_retried(
    raw: RawReceiver,
) -> None:
    """Lean transport: once any byte of the answer arrived the request was seen, so a
    connection dying then fails the attempt and nothing is sent again."""

    async def cut(exchange: Exchange) -> None:
        if exchange.number == 1:
            exchange.writer.write(b"HTTP/1.1 200 OK\r\nContent-Le")
            exchange.keep = False
        else:
            exchange.writer.write(OK)

    raw.script = cut
    async with using(LeanTransport(1.0, 5.0)) as transport:
        assert (await post(transport, raw.url(), "m1")).ok
        result = await post(transport, raw.url(), "m2")
    assert result.status is None
    assert result.error == "connection error: answer cut short"
    assert len(raw.requests) == 2


async def test_unasked_bytes_on_an_idle_connection_retire_it(
    raw: RawReceiver, make_transport: MakeTransport
) -> None:
    """Bytes a server sends while no request is out (a second answer to one request) make
    that connection unusable: the next attempt goes over a new one and gets its own answer."""
    raw.script = answer(OK + b"HTTP/1.1 418 Extra\r\nContent-Length: 0\r\n\r\n")
    async with using(make_transport(1.0, 5.0)) as transport:
        first = await post(transport, raw.url(), "m1")
        await asyncio.sleep(0.05)
        raw.script = answer(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
        second = await post(transport, raw.url(), "m2")
    assert (first.status, second.status) == (200, 201)
    assert len(raw.connections) == 2


async def test_idle_connection_is_closed_after_keepalive_timeout(
    raw: RawReceiver, make_transport: MakeTransport
) -> None:
    """With keepalive_timeout 0.2 s an unused connection is closed by the client on its own,
    and the next attempt opens a new one."""
    async with using(make_transport(1.0, 5.0, keepalive_timeout=0.2)) as transport:
        assert (await post(transport, raw.url(), "m1")).ok
        await closed(raw, 0)
        assert (await post(transport, raw.url(), "m2")).ok
    assert len(raw.connections) == 2


async def test_close_closes_every_connection(
    raw: RawReceiver, make_transport: MakeTransport
) -> None:
    """close() ends the kept-alive connections; a later post works again."""
    transport = make_transport(1.0, 5.0)
    results = await asyncio.gather(*(post(transport, raw.url(), f"m{i}") for i in range(3)))
    assert all(r.ok for r in results)
    await transport.close()
    for i in range(len(raw.connections)):
        await closed(raw, i)
    assert (await post(transport, raw.url(), "m9")).ok
    await transport.close()


async def test_cancellation_passes_through_and_drops_the_connection(
    raw: RawReceiver, make_transport: MakeTransport
) -> None:
    """A cancelled attempt raises CancelledError (not a result), and its connection,
    whose answer is still owed, is closed."""
    arrived = asyncio.Event()

    async def hang(exchange: Exchange) -> None:
        arrived.set()
        await exchange.reader.read()  # until the client closes
        exchange.keep = False

    raw.script = hang
    async with using(make_transport(1.0, 30.0)) as transport:
        task = asyncio.create_task(post(transport, raw.url()))
        async with asyncio.timeout(5):
            await arrived.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await closed(raw)


async def test_connect_timeout_has_its_own_text(make_transport: MakeTransport) -> None:
    """A listener whose accept queue is full never completes the handshake: the attempt
    ends at the connect timeout with 'timeout connecting (after 0.2s)'."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        try:
            for _ in range(4):  # fill the accept queue; later SYNs are dropped
                s = socket.socket()
                s.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    s.connect(("127.0.0.1", port))
                fillers.append(s)
            await asyncio.sleep(0.1)
            async with using(make_transport(0.2, 5.0)) as transport:
                result = await post(transport, f"http://127.0.0.1:{port}/hook")
        finally:
            for s in fillers:
                s.close()
    assert result.status is None
    assert result.error == "timeout connecting (after 0.2s)"


async def test_error_texts_are_the_same_for_both_transports() -> None:
    """Refused connections, unsupported schemes and invalid credentials read the same
    whichever transport made the attempt (the attempt log does not change with it)."""
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    targets = [
        WebhookTarget(f"http://127.0.0.1:{port}/hook", user="bot", password="hunter2"),
        WebhookTarget("ftp://example.test/hook"),
        WebhookTarget(f"http://127.0.0.1:{port}/hook", user="a:b", password="pw"),
        WebhookTarget("http:///no-host"),
    ]
    errors: dict[str, list[str | None]] = {}
    for name, make in TRANSPORTS.items():
        async with using(make(1.0, 5.0)) as transport:
            errors[name] = [(await transport.post(t, BODY, {})).error for t in targets]
    assert errors["lean"] == errors["aiohttp"]
    assert all(e and "hunter2" not in e for e in errors["lean"]), errors
