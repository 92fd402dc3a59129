"""The ingress route answered by the HTTP protocol itself, without ASGI.

``POST /endpoint/{urlToken}`` is the one route on the hot path. Through ASGI each
request costs a scope, ``receive``/``send`` message dicts, uvicorn's header checks on
the way out and the wrapper's own calls (uvicorn was 13.8 % of the GIL samples at
saturation, its ``send`` 5.9 % on its own; docs/performance.md, "Inbound path CPU").
Here the protocol's request cycle runs the ingress handler directly and writes the
answer in one ``transport.write``.

Everything else about the connection is uvicorn's own and unchanged: the parser, the
body buffering and flow control, keep-alive and its timeout, pipelined requests
(queued, answered in order), ``Connection: close``, shutdown, disconnects. Only the
request's handling and the writing of its answer differ, and the answer is the one the
ASGI wrapper gives (``IngressHandler``): same status, headers in the same order
(uvicorn's ``date`` and ``server`` first), same body.
"""

from __future__ import annotations

import urllib.parse
from typing import Any, cast

import httptools
from starlette.types import Receive
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, RequestResponseCycle

from flowhook.http.fast_ingress import (
    PREFIX,
    IngressHandler,
    check_declared,
    check_size,
    ingress_token,
    read_limited,
    request_headers,
)

_PREFIX = PREFIX.encode()


def ingress_route(scope: dict[str, Any], url: bytes) -> str | None:
    """The url token when the request target is the ingress route, else None. For the
    ingress route, fills the scope's path fields as uvicorn does (decoded,
    percent-unquoted): the token is the one the ASGI path would see."""
    if not url.startswith(_PREFIX):
        return None  # absolute-form targets and everything else: the ASGI path
    parsed = httptools.parse_url(url)
    raw_path = parsed.path
    path = raw_path.decode("ascii")
    if "%" in path:
        path = urllib.parse.unquote(path)
    token = ingress_token(path)
    if token is not None:
        scope["path"] = path
        scope["raw_path"] = raw_path
        scope["query_string"] = parsed.query or b""
    return token


class IngressCycle(RequestResponseCycle):
    """uvicorn's request cycle for one ingress request: the body as uvicorn buffers it,
    the answer from ``IngressHandler``, written without ASGI."""

    def __init__(
        self,
        handler: IngressHandler,
        token: str,
        client_ip: str | None,
        **cycle: Any,
    ) -> None:
        super().__init__(**cycle)
        self._handler = handler
        self._token = token
        self._client_ip = client_ip

    async def run_asgi(self, app: Any) -> None:
        """Run in uvicorn's task for the request, like an ASGI application."""
        try:
            api_key, declared = request_headers(self.scope["headers"])
            limit = self._handler.limit
            if self.more_body or self.waiting_for_100_continue:
                # Not all here yet: read it as the ASGI path does (100-continue, limits).
                receive = cast(Receive, self.receive)
                body: Any = lambda: read_limited(receive, declared, limit)  # noqa: E731
            else:
                body = lambda: self._whole_body(declared, limit)  # noqa: E731
            status, answer, headers = await self._handler.answer(
                self._token, body, api_key, self._client_ip
            )
            await self._respond(status, answer, headers)
        except BaseException as exc:
            self.logger.error("Exception in ASGI application\n", exc_info=exc)
            if not self.response_started:
                await self.send_500_response()
            else:
                self.transport.close()
        finally:
            self.on_response = lambda: None

    async def _whole_body(self, declared: bytes | None, limit: int) -> bytes:
        check_declared(declared, limit)
        check_size(len(self.body), limit)
        body = bytes(self.body)
        self.body = bytearray()
        return body

    async def _respond(self, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        """What ``send`` writes for a start and a body message, in one write."""
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()
        if self.disconnected:
            return
        self.response_started = True
        self.waiting_for_100_continue = False
        content = [STATUS_LINE[status]]
        for name, value in self.default_headers:
            content.extend((name, b": ", value, b"\r\n"))
        for name, value in headers:
            content.extend((name, b": ", value, b"\r\n"))
        content.append(b"content-length: %d\r\n" % len(body))
        if not self.keep_alive:
            content.append(b"connection: close\r\n")
        content.extend((b"\r\n", body))
        self.transport.write(b"".join(content))
        self.response_complete = True
        self.message_event.set()
        if not self.keep_alive:
            self.transport.close()
        self.on_response()
