"""The ingress route answered by the HTTP protocol itself (as under `flowhook serve`)
answers exactly what the ASGI path answers, and keeps uvicorn's connection handling:
keep-alive, pipelining in order, Connection: close, HTTP/1.0, bodies sent in pieces.
Real sockets, a real receiver, SQLite."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from flowhook.http.fast_ingress import IngressFastPath
from tests.support.receiver import Receiver
from tests.support.server import RunningServer, running_server

REPO = Path(__file__).resolve().parents[2]
LIMIT = 2000  # max_body_bytes of both servers


@asynccontextmanager
async def server_at(tmp_path: Path, name: str, *, asgi_only: bool) -> AsyncIterator[RunningServer]:
    where = tmp_path / name
    where.mkdir()
    async with running_server(
        where,
        f"sqlite:///{where / 'flowhook.db'}",
        flows_dir=REPO / "flows",
        asgi_only=asgi_only,
        max_body_bytes=LIMIT,
    ) as srv:
        yield srv


def message(session: str, text: str) -> bytes:
    return json.dumps({"userId": "u1", "sessionId": session, "text": text}).encode()


def post(path: str, body: bytes, *extra: str, version: str = "1.1") -> bytes:
    head = [f"POST {path} HTTP/{version}", "Host: x", "Content-Type: application/json"]
    head += [*extra, f"Content-Length: {len(body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[list[bytes], bytes]:
    """Status line and header lines as sent, and the body (by its content-length)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    lines = head.split(b"\r\n")[:-2]
    length = next(
        int(line.split(b":", 1)[1]) for line in lines if line.lower().startswith(b"content-length")
    )
    body = await asyncio.wait_for(reader.readexactly(length), 10)
    return lines, body


def normalised(lines: list[bytes], body: bytes) -> tuple[list[bytes], bytes]:
    """Without what differs between any two answers: the date and the trace id."""
    kept = [line for line in lines if not line.lower().startswith(b"date:")]
    return kept, re.sub(rb'"traceId":"[^"]+"', b'"traceId":"T"', body)


async def exchange(srv: RunningServer, raw: bytes, *, pause_after: int | None = None) -> Any:
    """Send ``raw`` on a new connection (with a pause after ``pause_after`` bytes), read
    one answer; also whether the server closed the connection after it."""
    port = int(srv.base_url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        if pause_after is None:
            writer.write(raw)
        else:
            writer.write(raw[:pause_after])
            await writer.drain()
            await asyncio.sleep(0.1)
            writer.write(raw[pause_after:])
        await writer.drain()
        lines, body = await read_response(reader)
        closed = await asyncio.wait_for(reader.read(1), 2) == b"" if b"close" in raw else None
        return normalised(lines, body), closed
    finally:
        writer.close()


Case = Callable[[str, str], tuple[bytes, int | None]]
HUGE = b"x" * (LIMIT + 1)
CASES: dict[str, Case] = {
    "accepted": lambda path, _: (post(path, message("s1", "hello")), None),
    "invalid json": lambda path, _: (post(path, b"{nope"), None),
    "unknown endpoint": lambda _, __: (post("/endpoint/abcdefghijklmnop", message("s", "x")), None),
    "malformed token": lambda _, __: (post("/endpoint/%zz", message("s", "x")), None),
    "missing key": lambda _, keyed: (post(keyed, message("s", "x")), None),
    "declared too large": lambda path, _: (
        post(path, b"").replace(b"Content-Length: 0", f"Content-Length: {LIMIT + 1}".encode()),
        None,
    ),
    "chunked too large": lambda path, _: (
        (
            f"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            f"{len(HUGE):x}\r\n"
        ).encode()
        + HUGE
        + b"\r\n0\r\n\r\n",
        None,
    ),
    "connection close": lambda path, _: (
        post(path, message("s2", "bye"), "Connection: close"),
        None,
    ),
    "http 1.0": lambda path, _: (post(path, message("s3", "old"), version="1.0"), None),
    "body in two pieces": lambda path, _: (post(path, message("s4", "slow")), -5),
    "query string": lambda path, _: (post(path + "?a=1", message("s5", "q")), None),
}


async def test_direct_answers_are_the_asgi_answers(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every kind of ingress request (accepted, 400, 404, 401, 413 declared and chunked,
    Connection: close, HTTP/1.0, a body in two pieces, a query string) gets the same
    status line, headers in the same order and body from the protocol's direct path as
    from the ASGI path (date and trace id aside); and the direct path never calls the
    ASGI wrapper's ingress, while the ASGI server does."""
    through_asgi = 0
    original = IngressFastPath._ingress

    async def counted(self: IngressFastPath, *args: Any) -> None:
        nonlocal through_asgi
        through_asgi += 1
        await original(self, *args)

    monkeypatch.setattr(IngressFastPath, "_ingress", counted)
    answers: dict[str, dict[str, Any]] = {}
    for name, asgi_only in (("asgi", True), ("direct", False)):
        async with server_at(tmp_path, name, asgi_only=asgi_only) as srv:
            ep = await srv.create_endpoint(name="e", flow="echo", webhookUrl=receiver.url)
            keyed = await srv.create_endpoint(
                name="k", flow="echo", webhookUrl=receiver.url, authMethod="apiKey"
            )
            path = "/endpoint/" + ep["endpointUrl"].rsplit("/", 1)[1]
            keyed_path = "/endpoint/" + keyed["endpointUrl"].rsplit("/", 1)[1]
            before = through_asgi
            answers[name] = {}
            for case, build in CASES.items():
                raw, pause = build(path, keyed_path)
                at = None if pause is None else len(raw) + pause
                answers[name][case] = await exchange(srv, raw, pause_after=at)
            await srv.services.run_until_idle(10)
            if asgi_only:
                assert through_asgi - before == len(CASES)
            else:
                assert through_asgi == before
    for case in CASES:
        assert answers["direct"][case] == answers["asgi"][case], case
    statuses = {case: answers["direct"][case][0][0][0] for case in CASES}
    assert statuses["accepted"] == b"HTTP/1.1 202 Accepted"
    assert statuses["declared too large"].startswith(b"HTTP/1.1 413")
    assert statuses["chunked too large"].startswith(b"HTTP/1.1 413")
    assert answers["direct"]["connection close"][1] is True  # closed after the answer


async def test_pipelined_requests_are_answered_in_order(tmp_path: Path, receiver: Receiver) -> None:
    """Three ingress POSTs of one session and a GET sent in one write on one connection
    get their four answers in request order, and the session's outputs arrive in the
    order of its messages."""
    async with server_at(tmp_path, "direct", asgi_only=False) as srv:
        ep = await srv.create_endpoint(name="e", flow="echo", webhookUrl=receiver.url)
        path = "/endpoint/" + ep["endpointUrl"].rsplit("/", 1)[1]
        port = int(srv.base_url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(
                post(path, message("p", "one"))
                + post(path, message("p", "two"))
                + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                + post(path, message("p", "three"))
            )
            await writer.drain()
            answers = [await read_response(reader) for _ in range(4)]
        finally:
            writer.close()
        statuses = [lines[0] for lines, _ in answers]
        assert statuses == [b"HTTP/1.1 202 Accepted"] * 2 + [b"HTTP/1.1 200 OK"] + [
            b"HTTP/1.1 202 Accepted"
        ]
        traces = [json.loads(body)["traceId"] for i, (_, body) in enumerate(answers) if i != 2]
        delivered = await receiver.wait_for(3)
        assert [d.body["AIOutput"]["traceId"] for d in delivered] == traces
