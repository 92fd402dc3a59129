"""A webhook receiver on raw sockets whose every answer is scripted byte by byte.

For tests of what a client does with answers no framework would send: malformed status
lines, answers that never end, connections closed at odd moments. It records each
connection and the exact bytes of each request on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


@dataclass
class Connection:
    """One accepted connection: its requests (head and body) and when it closed."""

    index: int
    peer: object
    requests: list[bytes] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Exchange:
    """One request as the script sees it; ``keep`` False closes the connection after."""

    conn: Connection
    number: int  # of this request on its connection, from 0
    head: bytes
    body: bytes
    writer: asyncio.StreamWriter
    reader: asyncio.StreamReader
    keep: bool = True

    def header(self, name: str) -> str | None:
        return headers_of(self.head).get(name.lower())


Script = Callable[[Exchange], Awaitable[None]]


async def answer_ok(exchange: Exchange) -> None:
    exchange.writer.write(OK)


def answer(raw: bytes, *, keep: bool = True) -> Script:
    """A script that answers every request with ``raw``."""

    async def script(exchange: Exchange) -> None:
        exchange.writer.write(raw)
        exchange.keep = keep

    return script


def headers_of(head: bytes) -> dict[str, str]:
    """The header lines of a request head, names lower-cased (the last one wins)."""
    out: dict[str, str] = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        if line:
            name, _, value = line.partition(":")
            out[name.strip().lower()] = value.strip()
    return out


@dataclass
class RawReceiver:
    script: Script = answer_ok
    connections: list[Connection] = field(default_factory=list)
    port: int = 0
    host: str = "127.0.0.1"
    _server: asyncio.Server | None = None

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, 0, ssl=ssl_context)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)

    def url(self, path: str = "/hook", host: str | None = None) -> str:
        name = host or self.host
        if ":" in name:
            name = f"[{name}]"
        return f"http://{name}:{self.port}{path}"

    @property
    def requests(self) -> list[bytes]:
        return [r for c in self.connections for r in c.requests]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = Connection(len(self.connections), writer.get_extra_info("peername"))
        self.connections.append(conn)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(headers_of(head).get("content-length", "0"))
                body = await reader.readexactly(length)
                conn.requests.append(head + body)
                exchange = Exchange(conn, len(conn.requests) - 1, head, body, writer, reader)
                await self.script(exchange)
                await writer.drain()
                if not exchange.keep:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            conn.closed.set()
