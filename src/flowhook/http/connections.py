"""Limits on inbound connections, so slow or idle clients cannot take the server down.

uvicorn closes idle keep-alive connections (``timeout_keep_alive``) but has no limit
on how long a client may take to send a request's headers, and accepts connections
without end. ``limited_protocol`` returns its httptools protocol with both:

- a **header timeout**: a connection whose request headers are not complete within
  ``http_header_timeout`` seconds of its first byte (or of being opened) is closed;
- a **connection cap**: beyond ``http_max_connections`` open connections, a new one
  is answered at once with ``503`` and a JSON body, and closed, so file descriptors
  stay bounded and outbound deliveries (which need sockets too) keep working.

With an ``IngressHandler`` it also answers ``POST /endpoint/{urlToken}`` itself, without
ASGI (``flowhook.http.direct_ingress``); every other request goes to the application.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from flowhook.http.direct_ingress import IngressCycle, ingress_route
from flowhook.http.fast_ingress import IngressHandler

_BODY = orjson.dumps(
    {
        "error": {
            "code": "overloaded",
            "message": "too many open connections; retry shortly",
        }
    }
)
OVERLOADED_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"content-type: application/json\r\n"
    b"retry-after: 1\r\n"
    b"connection: close\r\n"
    b"content-length: " + str(len(_BODY)).encode() + b"\r\n\r\n" + _BODY
)


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header timeout and a connection cap."""

    header_timeout: float = 10.0
    max_connections: int = 2000
    ingress: IngressHandler | None = None  # answers the ingress route without ASGI

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.max_connections:
            # Answer, then half-close: closing outright while the request is still
            # unread would reset the connection and lose the answer. What the client
            # sends is read and dropped; the socket is closed within a second.
            self._refused = True
            transport.write(OVERLOADED_RESPONSE)
            if transport.can_write_eof():
                transport.write_eof()
            self.loop.call_later(1.0, transport.close)
            return
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused:
            return
        self._cancel_header_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_timer()  # a keep-alive connection's next request

    def on_headers_complete(self) -> None:
        self._cancel_header_timer()
        if self.ingress is None or not self._direct_ingress(self.ingress):
            super().on_headers_complete()

    def _direct_ingress(self, handler: IngressHandler) -> bool:
        """Start the ingress route's cycle, as ``on_headers_complete`` starts an ASGI one;
        False (nothing done) for any other request, or when an option the direct path
        does not implement is on (root path, concurrency limit, access log)."""
        parser = self.parser
        if (
            parser.get_method() != b"POST"
            or self.root_path
            or self.limit_concurrency is not None
            or self.access_log
            or parser.should_upgrade()
        ):
            return False
        scope: Any = self.scope
        try:
            token = ingress_route(scope, self.url)
        except Exception:  # e.g. a path that is not ASCII: uvicorn answers it as before
            return False
        if token is None:
            return False
        http_version = parser.get_http_version()
        scope["method"] = "POST"
        if http_version != "1.1":
            scope["http_version"] = http_version
        existing = self.cycle
        self.cycle = IngressCycle(
            handler,
            token,
            self.client[0] if self.client else None,
            scope=scope,
            transport=self.transport,
            flow=self.flow,
            logger=self.logger,
            access_logger=self.access_logger,
            access_log=self.access_log,
            default_headers=self.server_state.default_headers,
            message_event=asyncio.Event(),
            expect_100_continue=self.expect_100_continue,
            keep_alive=http_version != "1.0" and parser.should_keep_alive(),
            on_response=self.on_response_complete,
        )
        if existing is None or existing.response_complete:
            self._start_asgi_task(self.cycle, self.app)
        else:
            # Pipelined: answered in order, after the requests before it.
            self.flow.pause_reading()
            self.pipeline.appendleft((self.cycle, self.app))
        return True

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def limited_protocol(
    header_timeout: float, max_connections: int, ingress: IngressHandler | None = None
) -> type[HttpToolsProtocol]:
    """The protocol class for ``uvicorn.Config(http=...)`` with these limits, answering
    the ingress route with ``ingress`` when given."""
    return type(
        "LimitedHttpToolsProtocol",
        (LimitedHttpToolsProtocol,),
        {"header_timeout": header_timeout, "max_connections": max_connections, "ingress": ingress},
    )


def uvicorn_limits(settings: Any, ingress: IngressHandler | None = None) -> dict[str, Any]:
    """uvicorn options for the connection limits in ``settings`` (and the protocol that
    answers the ingress route with ``ingress``, when given)."""
    return {
        "http": limited_protocol(
            settings.http_header_timeout, settings.http_max_connections, ingress
        ),
        "timeout_keep_alive": settings.http_keepalive_timeout,
    }
