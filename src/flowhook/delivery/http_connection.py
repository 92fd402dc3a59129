"""One kept-alive HTTP/1.1 client connection: send a request, read one answer.

An ``asyncio.Protocol`` whose answers are parsed by ``httptools`` as the bytes arrive;
no stream objects, no task per request, one timer per exchange. What is kept of an
answer is what delivery records: the status, the first ``Retry-After`` and at most
``excerpt_limit`` bytes of the body. Bytes past that are never stored: once the excerpt
is full the exchange ends and the connection is closed (its rest is unread, so it cannot
carry another request).

A connection is handed back for reuse only when its answer was read to the end, the
server did not ask to close (``Connection: close``, HTTP/1.0 without keep-alive) and
nothing arrived beyond that answer. Bytes arriving while no request is out (the server
has nothing to say then) make it unusable, as does the server closing it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

import httptools

# The status line and headers of an answer may take this much; past it the answer is
# refused (a receiver sending headers without end must not cost memory).
MAX_HEAD_BYTES = 64 * 1024


class ConnectionClosed(Exception):
    """The connection closed (or failed) before the answer was complete.

    ``answered``: some bytes of the answer had arrived. A reused connection closed with
    nothing answered is the stale keep-alive case: the request may be sent again on a
    fresh connection.
    """

    def __init__(self, answered: bool) -> None:
        super().__init__("server disconnected" if not answered else "answer cut short")
        self.answered = answered


class InvalidAnswer(Exception):
    """The server's bytes are not an HTTP/1.x answer flowhook accepts."""


class Answer:
    """What delivery keeps of one HTTP answer."""

    __slots__ = ("excerpt", "retry_after", "reusable", "status")

    def __init__(self, status: int, retry_after: bytes | None, excerpt: bytes, reusable: bool):
        self.status = status
        self.retry_after = retry_after
        self.excerpt = excerpt
        self.reusable = reusable


class HttpConnection(asyncio.Protocol):
    """One client connection; at most one exchange at a time (no pipelining)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_lost: Callable[[HttpConnection], None]):
        self._loop = loop
        self._on_lost = on_lost
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0  # loop time when last handed back
        # State of the exchange under way.
        self._waiter: asyncio.Future[Answer] | None = None
        self._limit = 0
        self._status = 0
        self._received = 0
        self._headers_done = False
        self._complete = False
        self._framed = False  # Content-Length or Transfer-Encoding: the end is in-band
        self._after_complete = False
        self._keep_alive = False
        self._retry_after: bytes | None = None
        self._excerpt = bytearray()

    # -- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            # Nothing was asked: whatever this is, the connection cannot be trusted.
            self.abort()
            return
        self._received += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(InvalidAnswer("unexpected protocol upgrade"))
            return
        except httptools.HttpParserError:
            if not self._complete:  # else: bytes after a complete answer, settled below
                self._fail(InvalidAnswer("invalid HTTP answer"))
                return
            self._after_complete = True
        if self._complete:
            self._settle(reusable=self._keep_alive and not self._after_complete)
        elif not self._headers_done and self._received > MAX_HEAD_BYTES:
            # Checked after each read: the parser holds at most this plus one read.
            self._fail(InvalidAnswer("answer head too large"))
        elif self._headers_done and len(self._excerpt) >= self._limit:
            self._settle(reusable=False)  # enough read; the unread rest goes with the socket

    def eof_received(self) -> bool | None:
        return False  # close our side too; connection_lost settles the exchange

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._on_lost(self)
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._headers_done and not self._framed:
            self._complete = True  # an answer without length ends with the connection
            self._settle(reusable=False)
        else:
            waiter.set_exception(ConnectionClosed(answered=self._received > 0))

    # -- httptools callbacks ---------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._complete:
            self._after_complete = True

    # Once the answer is complete, callbacks come only from bytes beyond it (which retire
    # the connection): they must not touch the answer.

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._complete:
            return
        if len(name) == 11 and self._retry_after is None and name.lower() == b"retry-after":
            self._retry_after = value
        elif (len(name) == 14 and name.lower() == b"content-length") or (
            len(name) == 17 and name.lower() == b"transfer-encoding"
        ):
            self._framed = True

    def on_headers_complete(self) -> None:
        if self._complete:
            return
        self._headers_done = True
        self._status = status = self._parser.get_status_code()
        if status in (204, 304):
            self._framed = True  # never a body

    def on_body(self, body: bytes) -> None:
        if self._complete:
            return
        room = self._limit - len(self._excerpt)
        if room > 0:
            self._excerpt += body[:room] if len(body) > room else body

    def on_message_complete(self) -> None:
        if self._complete:
            return
        if 100 <= self._status < 200:  # an interim answer (100 Continue, 103): the real one follows
            self._headers_done = False
            self._framed = False
            self._retry_after = None
            self._excerpt.clear()
            return
        self._complete = True
        # Asked here: the parser forgets it once it has moved on to the next message.
        self._keep_alive = self._parser.should_keep_alive()

    # -- use -------------------------------------------------------------------------

    def usable(self) -> bool:
        """Still open, and nothing happened on it since its last answer."""
        transport = self._transport
        return not self.closed and transport is not None and not transport.is_closing()

    async def exchange(self, request: bytes, deadline: float, excerpt_limit: int) -> Answer:
        """Send ``request`` and wait for its answer until ``deadline`` (loop time).

        Raises ``ConnectionClosed``, ``InvalidAnswer`` or ``TimeoutError``; after any
        exception, and after an answer that is not ``reusable``, the connection is closed.
        """
        transport = self._transport
        if transport is None or self.closed:
            raise ConnectionClosed(answered=False)
        waiter: asyncio.Future[Answer] = self._loop.create_future()
        self._waiter = waiter
        self._limit = excerpt_limit
        self._received = 0
        self._headers_done = self._complete = self._framed = False
        self._after_complete = self._keep_alive = False
        self._retry_after = None
        self._excerpt.clear()
        timer = self._loop.call_at(deadline, self._time_out)
        try:
            transport.write(request)
            return await waiter
        except BaseException:
            self.abort()  # cancelled or failed half-way: its state is unknown
            raise
        finally:
            timer.cancel()
            self._waiter = None

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    # -- internals -------------------------------------------------------------------

    def _settle(self, *, reusable: bool) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        waiter.set_result(Answer(self._status, self._retry_after, bytes(self._excerpt), reusable))
        if not reusable:
            self.abort()

    def _fail(self, exc: Exception) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.abort()

    def _time_out(self) -> None:
        self._fail(TimeoutError())
