"""Properties of the lean transport's request bytes and answer parsing, without sockets.

Whatever a target URL, its credentials or an attempt's headers hold, the encoded request
is one well-formed HTTP/1.1 request carrying exactly the headers meant (or it is refused
as invalid): no line break can start a header of its own. And an answer is read the same
however the network splits it into reads.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httptools
from hypothesis import given, settings
from hypothesis import strategies as st

from flowhook.delivery.http_connection import Answer, HttpConnection
from flowhook.delivery.http_request import PreparedRequest
from flowhook.delivery.types import WebhookTarget

BODY = b'{"AIOutput":{"text":"Hi"}}'
text = st.text(st.characters(codec="utf-8"), max_size=30)
tricky = st.one_of(text, st.sampled_from(["\r\nX-Injected: 1", "\nX-Injected: 1", "a\rb", ""]))


class ParsedRequest:
    def __init__(self, raw: bytes) -> None:
        self.headers: list[tuple[str, str]] = []
        self.body = b""
        self.complete = False
        parser = httptools.HttpRequestParser(self)
        parser.feed_data(raw)
        self.method = parser.get_method()

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1").lower(), value.decode("latin-1")))

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.complete = True


@settings(max_examples=300, deadline=None)
@given(
    path=tricky,
    user=st.one_of(st.none(), tricky),
    password=st.one_of(st.none(), tricky),
    header_value=tricky,
)
def test_request_holds_exactly_the_headers_meant(
    path: str, user: str | None, password: str | None, header_value: str
) -> None:
    """For any path, user, password and attempt header value the request is refused as
    invalid, or parses as one POST whose header names are exactly the fixed ones, the
    attempt's and Content-Length, with the body intact."""
    prepared = PreparedRequest(WebhookTarget(f"http://example.test:8080/{path}", user, password))
    if prepared.origin is None:
        assert (prepared.error or "").startswith("invalid")
        return
    try:
        raw = prepared.encode(BODY, {"webhook-id": header_value})
    except ValueError as exc:
        refusal = str(exc)
    else:
        refusal = ""
    if refusal:
        assert refusal.startswith("invalid webhook request")
        return
    parsed = ParsedRequest(raw)
    assert parsed.complete
    assert parsed.method == b"POST"
    names = [name for name, _ in parsed.headers]
    expected = ["host", "user-agent", "content-type", "accept"]
    if user is not None or password is not None:
        expected.append("authorization")
    assert names == [*expected, "webhook-id", "content-length"]
    assert dict(parsed.headers)["host"] == "example.test:8080"
    assert parsed.body == BODY


class FakeTransport:
    """Just enough of an asyncio transport for one ``HttpConnection``."""

    def __init__(self) -> None:
        self.written = b""
        self.closing = False

    def write(self, data: bytes) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str) -> Any:
        return None


ANSWERS = [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nRetry-After: 7\r\n\r\nhello", 200, b"hello", True),
    (
        b"HTTP/1.1 503 No\r\nTransfer-Encoding: chunked\r\nretry-after: 3\r\n\r\n"
        b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        503,
        b"abcde",
        True,
    ),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", 204, b"", True),
    (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", 200, b"ok", False),
    # Longer than the excerpt: reusable only if the rest came in the same read.
    (b"HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n" + b"z" * 3000, 200, b"z" * 1024, None),
]


async def read_answer(raw: bytes, cuts: list[int]) -> Answer:
    loop = asyncio.get_running_loop()
    conn = HttpConnection(loop, lambda _c: None)
    conn.connection_made(FakeTransport())  # type: ignore[arg-type]
    pending = asyncio.ensure_future(
        conn.exchange(b"POST / HTTP/1.1\r\n\r\n", loop.time() + 5, 1024)
    )
    await asyncio.sleep(0)
    start = 0
    for cut in [*sorted(set(cuts)), len(raw)]:
        if cut > start and not pending.done():
            conn.data_received(raw[start:cut])
            start = cut
        await asyncio.sleep(0)
    return await pending


@settings(max_examples=100, deadline=None)
@given(which=st.integers(0, len(ANSWERS) - 1), cuts=st.lists(st.integers(0, 3100), max_size=8))
def test_answer_is_read_the_same_however_it_is_split(which: int, cuts: list[int]) -> None:
    """Status, first Retry-After, excerpt (at most 1 KiB) and whether the connection may be
    reused do not depend on where the answer's bytes are split into reads (an answer longer
    than the excerpt is reused only when its rest came in the same read)."""
    raw, status, excerpt, reusable = ANSWERS[which]
    inside = [c for c in cuts if c < len(raw)]
    answer = asyncio.run(read_answer(raw, inside))
    assert (answer.status, answer.excerpt) == (status, excerpt)
    if reusable is None:  # never reused with part of the answer unread
        excerpt_full = raw.index(b"\r\n\r\n") + 4 + 1024
        assert answer.reusable == (not [c for c in inside if c >= excerpt_full])
    else:
        assert answer.reusable == reusable
    if which < 2:
        assert answer.retry_after == (b"7" if which == 0 else b"3")
