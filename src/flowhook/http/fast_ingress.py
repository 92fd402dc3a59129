"""The ingress route served straight from ASGI, ahead of FastAPI.

``POST /endpoint/{urlToken}`` is the one route on the hot path. FastAPI's and
Starlette's middleware stack, routing and Request object cost about 130 µs per
request (measured with py-spy, see docs/performance.md), more than the ingress
work itself. This wrapper answers that route directly and passes every other
request, and the lifespan, to the FastAPI application. The FastAPI route of the
same path stays declared, so the OpenAPI document describes it; both call the
same ``Inbox.accept`` and answer the same bodies and status codes.

Under ``flowhook serve`` the HTTP protocol answers the route itself, without ASGI
(``flowhook.http.direct_ingress``); both go through ``IngressHandler``, so the answers
are the same byte for byte. This wrapper serves every other server (tests, embedding).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING

import orjson
import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

from flowhook.errors import FlowhookError, PayloadTooLarge, TurnTimeout
from flowhook.http.errors import error_response
from flowhook.sessions.inbox import Accepted

if TYPE_CHECKING:
    from flowhook.services import Services

log = structlog.get_logger(__name__)

PREFIX = "/endpoint/"
_JSON_HEADERS = [(b"content-type", b"application/json")]
_INTERNAL_ERROR = b'{"error":{"code":"internal_error","message":"an unexpected error occurred"}}'


Headers = list[tuple[bytes, bytes]]


class IngressHandler:
    """The answer to ``POST /endpoint/{urlToken}``, whoever parsed the request: the ASGI
    wrapper below, or the HTTP protocol itself (``flowhook.http.direct_ingress``)."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self.limit = services.settings.max_body_bytes

    async def answer(
        self,
        token: str,
        body: bytes | Callable[[], Awaitable[bytes]],
        api_key: str | None,
        client_ip: str | None,
    ) -> tuple[int, bytes, Headers]:
        """Status, body and headers (without content-length) of the answer. ``body`` is
        the whole request body, already checked against the limit, or a reader of it
        that refuses (413) a body over the limit. Never raises for what a client sent."""
        services = self._services
        metrics = services.metrics
        try:
            if not isinstance(body, bytes):
                body = await body()
            accepted = await services.inbox.accept(token, body, api_key, client_ip=client_ip)
            status, answer = await answer_for(accepted, services.settings.rest_timeout_seconds)
        except FlowhookError as exc:
            response = error_response(exc)
            metrics.ingress(response.status_code)
            headers = [(k, v) for k, v in response.raw_headers if k != b"content-length"]
            return response.status_code, bytes(response.body), headers
        except Exception as exc:  # a client must never see a traceback
            log.error("ingress.unexpected_error", error=type(exc).__name__, exc_info=exc)
            metrics.ingress(500)
            return 500, _INTERNAL_ERROR, _JSON_HEADERS
        metrics.ingress(202)
        return status, answer, _JSON_HEADERS


def ingress_token(path: str) -> str | None:
    """The url token when ``path`` is the ingress route, else None."""
    if path.startswith(PREFIX):
        token = path[len(PREFIX) :]
        if "/" not in token:
            return token
    return None


def request_headers(headers: Iterable[tuple[bytes, bytes]]) -> tuple[str | None, bytes | None]:
    """The X-Webhook-Key and the declared content-length (the last of each)."""
    api_key = None
    declared = None
    for name, value in headers:
        if name == b"x-webhook-key":
            api_key = value.decode("latin-1")
        elif name == b"content-length":
            declared = value
    return api_key, declared


class IngressFastPath:
    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.handler = IngressHandler(services)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            token = ingress_token(scope["path"])
            if token is not None:
                await self._ingress(scope, receive, send, token)
                return
        await self.app(scope, receive, send)

    async def _ingress(self, scope: Scope, receive: Receive, send: Send, token: str) -> None:
        api_key, declared = request_headers(scope["headers"])
        limit = self.handler.limit
        client = scope.get("client")
        status, body, headers = await self.handler.answer(
            token,
            lambda: read_limited(receive, declared, limit),
            api_key,
            client[0] if client else None,
        )
        await _respond(send, status, body, headers)


def ingress_handler_of(app: object) -> IngressHandler | None:
    """The ingress handler of an application from ``create_app`` (None: no ingress route,
    as for a worker-only process)."""
    return app.handler if isinstance(app, IngressFastPath) else None


def trace_id_body(trace_id: str) -> bytes:
    """The 202 answer: the committed message's trace id."""
    return b'{"traceId":"' + trace_id.encode() + b'"}'


async def answer_for(accepted: Accepted, rest_timeout: float) -> tuple[int, bytes]:
    """The answer to an accepted message: 202 with the trace id, or for a rest endpoint
    200 with the turn's outputs once it is committed."""
    if accepted.outputs is None:
        return 202, trace_id_body(accepted.trace_id)
    try:
        # On a timeout the future is cancelled: Replies forgets it, the turn runs anyway.
        outputs = await asyncio.wait_for(accepted.outputs, rest_timeout)
    except TimeoutError:
        raise TurnTimeout(
            f"the turn did not finish within {rest_timeout:g} s; it still runs, but its "
            "outputs cannot be returned to this request",
            trace_id=accepted.trace_id,
        ) from None
    answer = {
        "userId": accepted.user_id,
        "sessionId": accepted.session_id,
        "traceId": accepted.trace_id,
        "outputs": outputs,
    }
    if accepted.reshape is not None:
        return 200, await accepted.reshape(answer)
    return 200, orjson.dumps(answer)


async def read_limited(receive: Receive, declared: bytes | None, limit: int) -> bytes:
    """The body, refusing (413) anything over ``limit`` bytes before reading it all."""
    check_declared(declared, limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        check_size(size, limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def check_declared(declared: bytes | None, limit: int) -> None:
    """Refuse (413) a request whose content-length is over the limit, before its body."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"request body is {int(declared)} bytes; the limit is {limit} bytes", limit=limit
        )


def check_size(size: int, limit: int) -> None:
    """Refuse (413) a body that has grown over the limit."""
    if size > limit:
        raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes", limit=limit)


async def _respond(send: Send, status: int, body: bytes, headers: Headers) -> None:
    raw = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
