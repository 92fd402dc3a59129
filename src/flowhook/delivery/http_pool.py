"""Kept-alive connections per origin (scheme, host, port), and opening new ones.

Opening a connection goes through the SSRF guard exactly as the aiohttp clients do
(``flowhook.delivery.ssrf``): a host name is resolved by ``GuardedResolver`` (blocked
answers dropped), and every socket is created by ``AddressGuard.socket_factory``, which
checks the exact address right before ``connect()`` (IP literals included). Addresses
are tried with Happy Eyeballs (RFC 8305), as aiohttp does. Names are resolved for each
new connection (no DNS cache): connections are kept, so that is rare.

No pool-wide cap: the dispatcher caps connections per endpoint and in all, with fair
shares. An idle connection is closed once it has been idle ``keepalive_timeout``
seconds: checked when it is taken, and by a sweep so an idle pool holds no sockets.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import Any

import aiohappyeyeballs
from aiohttp.abc import AbstractResolver
from aiohttp.resolver import DefaultResolver

from flowhook.delivery.http_connection import HttpConnection
from flowhook.delivery.http_request import Origin
from flowhook.delivery.ssrf import AddressGuard, GuardedResolver, parse_ip

HAPPY_EYEBALLS_DELAY = 0.25  # seconds, aiohttp's default


class ConnectTimeout(TimeoutError):
    """Opening the connection took longer than the connect timeout."""


class ConnectionPool:
    """Idle connections by origin, handed out newest first."""

    def __init__(
        self,
        *,
        connect_timeout: float,
        keepalive_timeout: float,
        guard: AddressGuard | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._connect_timeout = connect_timeout
        self._keepalive = keepalive_timeout
        self._guard = guard
        self._ssl_context = ssl_context
        self._resolver: AbstractResolver | None = None
        self._idle: dict[Origin, list[HttpConnection]] = {}
        self._all: set[HttpConnection] = set()
        self._sweep: asyncio.TimerHandle | None = None

    def take(self, origin: Origin) -> HttpConnection | None:
        """An idle connection to ``origin`` that is still open and not idle for too long."""
        idle = self._idle.get(origin)
        if not idle:
            return None
        oldest_allowed = asyncio.get_running_loop().time() - self._keepalive
        while idle:
            conn = idle.pop()
            if conn.idle_since > oldest_allowed and conn.usable():
                return conn
            conn.close()
        return None

    def give_back(self, origin: Origin, conn: HttpConnection) -> None:
        """Keep ``conn`` (its answer was read to the end) for the next request."""
        loop = asyncio.get_running_loop()
        conn.idle_since = loop.time()
        idle = self._idle.get(origin)
        if idle is None:
            idle = self._idle[origin] = []
        idle.append(conn)
        if self._sweep is None:
            self._sweep = loop.call_later(self._keepalive / 2, self._close_expired)

    async def open(self, origin: Origin, deadline: float) -> HttpConnection:
        """A new connection to ``origin``; raises ``OSError`` (``BlockedAddressError`` for
        the guard), ``ssl.SSLError``, ``ConnectTimeout`` or ``TimeoutError`` (``deadline``,
        loop time, came first)."""
        loop = asyncio.get_running_loop()
        connect_deadline = loop.time() + self._connect_timeout
        try:
            async with asyncio.timeout_at(min(connect_deadline, deadline)):
                return await self._connect(loop, origin)
        except TimeoutError:
            if connect_deadline <= deadline:
                raise ConnectTimeout from None
            raise

    async def close(self) -> None:
        """Close every connection, idle or in use; the pool stays usable."""
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for conn in list(self._all):
            conn.abort()
        self._all.clear()
        self._idle.clear()
        resolver, self._resolver = self._resolver, None
        if resolver is not None:
            await resolver.close()

    # -- internals -------------------------------------------------------------------

    async def _connect(self, loop: asyncio.AbstractEventLoop, origin: Origin) -> HttpConnection:
        infos = await self._addresses(origin)
        guard = self._guard
        sock = await aiohappyeyeballs.start_connection(
            infos,
            happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY,
            loop=loop,
            socket_factory=None if guard is None else guard.socket_factory,
        )
        tls = self._tls_context() if origin.tls else None
        try:
            _, conn = await loop.create_connection(
                lambda: HttpConnection(loop, self._forget),
                sock=sock,
                ssl=tls,
                server_hostname=origin.host if tls is not None else None,
            )
        except BaseException:
            sock.close()
            raise
        self._all.add(conn)
        return conn

    async def _addresses(self, origin: Origin) -> list[aiohappyeyeballs.AddrInfoType]:
        ip = parse_ip(origin.host)
        if ip is not None:  # a literal is checked by the socket factory, like any address
            hosts = [str(ip)]
        else:
            hosts = [answer["host"] for answer in await self._resolve(origin)]
        port = origin.port
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port, 0, 0))
            if ":" in host
            else (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port))
            for host in hosts
        ]

    async def _resolve(self, origin: Origin) -> list[Any]:
        resolver = self._resolver
        if resolver is None:
            guard = self._guard
            resolver = DefaultResolver() if guard is None else GuardedResolver(guard)
            self._resolver = resolver
        return await resolver.resolve(origin.host, origin.port, family=socket.AF_UNSPEC)

    def _tls_context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            # Certificates verified against the system's CAs, host name checked (SNI sent).
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    def _forget(self, conn: HttpConnection) -> None:
        self._all.discard(conn)

    def _close_expired(self) -> None:
        self._sweep = None
        oldest_allowed = asyncio.get_running_loop().time() - self._keepalive
        for origin, idle in list(self._idle.items()):
            keep = []
            for conn in idle:
                if conn.idle_since > oldest_allowed and conn.usable():
                    keep.append(conn)
                else:
                    conn.close()
            if keep:
                self._idle[origin] = keep
            else:
                del self._idle[origin]
        if self._idle:
            self._sweep = asyncio.get_running_loop().call_later(
                self._keepalive / 2, self._close_expired
            )
