"""The ingress route served straight from ASGI, ahead of FastAPI.

``POST /endpoint/{urlToken}`` is the one route on the hot path. FastAPI's and
Starlette's middleware stack, routing and Request object cost about 130 µs per
request (measured with py-spy, see docs/performance.md), more than the ingress
work itself. This wrapper answers that route directly and passes every other
request, and the lifespan, to the FastAPI application. The FastAPI route of the
same path stays declared, so the OpenAPI document describes it; both call the
same ``Inbox.accept`` and answer the same bodies and status codes.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

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


class IngressFastPath:
    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self._services = services
        self._limit = services.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            if path.startswith(PREFIX) and "/" not in path[len(PREFIX) :]:
                await self._ingress(scope, receive, send, path[len(PREFIX) :])
                return
        await self.app(scope, receive, send)

    async def _ingress(self, scope: Scope, receive: Receive, send: Send, token: str) -> None:
        api_key = None
        declared = None
        for name, value in scope["headers"]:
            if name == b"x-webhook-key":
                api_key = value.decode("latin-1")
            elif name == b"content-length":
                declared = value
        metrics = self._services.metrics
        try:
            body = await read_limited(receive, declared, self._limit)
            client = scope.get("client")
            accepted = await self._services.inbox.accept(
                token, body, api_key, client_ip=client[0] if client else None
            )
            status, answer = await answer_for(
                accepted, self._services.settings.rest_timeout_seconds
            )
        except FlowhookError as exc:
            response = error_response(exc)
            metrics.ingress(response.status_code)
            await _respond(send, response.status_code, bytes(response.body), response.raw_headers)
            return
        except Exception as exc:  # a client must never see a traceback
            log.error("ingress.unexpected_error", error=type(exc).__name__, exc_info=exc)
            metrics.ingress(500)
            await _respond(send, 500, _INTERNAL_ERROR, _JSON_HEADERS)
            return
        metrics.ingress(202)
        await _respond(send, status, answer, _JSON_HEADERS)


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
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"request body is {int(declared)} bytes; the limit is {limit} bytes", limit=limit
        )
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes", limit=limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _respond(send: Send, status: int, body: bytes, headers: Any) -> None:
    raw = [(k, v) for k, v in headers if k != b"content-length"]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
