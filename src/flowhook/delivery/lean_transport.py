"""The delivery transport: a webhook POST over a pooled HTTP/1.1 connection.

Delivery needs little of an HTTP client: POST a ready body with a fixed set of headers,
read the status, ``Retry-After`` and at most ``body_excerpt_bytes`` of the answer. This
does that on asyncio protocols with ``httptools`` (``http_connection``), a keep-alive
pool per origin (``http_pool``) and the request's fixed part encoded once per target
(``http_request``), at about half the CPU of a general-purpose client's POST
(docs/architecture.md, "The delivery transport").

It behaves as ``AiohttpTransport`` does: redirects are not followed (a 3xx is a failed
attempt), every failure becomes an ``AttemptResult`` with the same error texts (built
from the failure's type and safe parts only, never quoting the URL or credentials), and
cancellation passes through. One difference: a request sent on a *reused* connection
that the server closed before answering anything (it closed the idle connection just as
the request went out) is sent once more on a new connection, within the same attempt
and its timeout; docs/delivery.md says why that cannot deliver anything twice that a
retry would not.
"""

from __future__ import annotations

import asyncio
import ssl
import time

from flowhook.delivery.http_connection import Answer, ConnectionClosed, InvalidAnswer
from flowhook.delivery.http_pool import ConnectionPool, ConnectTimeout
from flowhook.delivery.http_request import PreparedRequest
from flowhook.delivery.ssrf import AddressGuard, BlockedAddressError
from flowhook.delivery.transport import (
    BODY_EXCERPT_BYTES,
    PREPARED_MAX,
    _scrub,
    parse_retry_after,
)
from flowhook.delivery.types import AttemptResult, WebhookTarget


class LeanTransport:
    """``Transport`` over a pool of kept-alive HTTP/1.1 connections.

    With a ``guard`` every connection goes through the SSRF guard: DNS answers are
    filtered and each socket's address is checked right before it connects.
    ``ssl_context`` replaces the default one (system CAs, host names checked).
    """

    def __init__(
        self,
        connect_timeout: float = 5.0,
        total_timeout: float = 15.0,
        *,
        keepalive_timeout: float = 30.0,
        body_excerpt_bytes: int = BODY_EXCERPT_BYTES,
        guard: AddressGuard | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._connect_timeout = connect_timeout
        self._total_timeout = total_timeout
        self._excerpt_bytes = body_excerpt_bytes
        self._pool = ConnectionPool(
            connect_timeout=connect_timeout,
            keepalive_timeout=keepalive_timeout,
            guard=guard,
            ssl_context=ssl_context,
        )
        # Keyed by the target object: the resolver hands out the same object while the
        # endpoint's URL and credentials stay the same (a changed one is a new object).
        self._prepared: dict[int, PreparedRequest] = {}

    def _prepare(self, target: WebhookTarget) -> PreparedRequest:
        prepared = self._prepared.get(id(target))
        if prepared is None or prepared.target is not target:
            if len(self._prepared) >= PREPARED_MAX:
                self._prepared.clear()
            prepared = self._prepared[id(target)] = PreparedRequest(target)
        return prepared

    async def post(
        self, target: WebhookTarget, body: bytes, headers: dict[str, str]
    ) -> AttemptResult:
        """POST ``body`` to ``target``; never raises except for cancellation."""
        started = time.perf_counter()
        prepared = self._prepare(target)
        origin = prepared.origin
        if origin is None:
            return AttemptResult(None, 0.0, error=prepared.error)
        try:
            request = prepared.encode(body, headers)
            deadline = asyncio.get_running_loop().time() + self._total_timeout
            pool = self._pool
            conn = pool.take(origin)
            answer: Answer | None = None
            if conn is not None:
                try:
                    answer = await conn.exchange(request, deadline, self._excerpt_bytes)
                except ConnectionClosed as exc:
                    if exc.answered:
                        raise
                    # A kept-alive connection the server had closed: once more, fresh.
            if answer is None:
                conn = await pool.open(origin, deadline)
                answer = await conn.exchange(request, deadline, self._excerpt_bytes)
            assert conn is not None
            if answer.reusable:
                pool.give_back(origin, conn)
            status = answer.status
            return AttemptResult(
                status,
                (time.perf_counter() - started) * 1000.0,
                None if 200 <= status < 300 else f"HTTP {status}",
                None
                if answer.retry_after is None
                else parse_retry_after(answer.retry_after.decode("latin-1"), time.time()),
                answer.excerpt.decode("utf-8", "replace") if answer.excerpt else "",
            )
        except Exception as exc:  # every failure becomes a result; cancellation passes
            return AttemptResult(
                status=None,
                duration_ms=(time.perf_counter() - started) * 1000.0,
                error=_scrub(self._describe(exc), target.password),
            )

    def _describe(self, exc: BaseException) -> str:
        """A short, credential-free description of why there was no HTTP answer
        (the texts of ``AiohttpTransport._describe``)."""
        if isinstance(exc, ConnectTimeout):
            return f"timeout connecting (after {self._connect_timeout:g}s)"
        if isinstance(exc, TimeoutError):
            return f"timeout (no complete answer within {self._total_timeout:g}s)"
        if isinstance(exc, ssl.SSLCertVerificationError):
            return "TLS certificate verification failed"
        if isinstance(exc, BlockedAddressError):
            return exc.strerror or "refused by the SSRF guard"
        if isinstance(exc, ConnectionClosed):
            return f"connection error: {exc}"
        if isinstance(exc, InvalidAnswer):
            return f"connection error: {exc}"
        if isinstance(exc, OSError):
            return f"connection error: {exc.strerror or type(exc).__name__}"
        if isinstance(exc, ValueError):
            return str(exc) if str(exc).startswith("invalid webhook") else "invalid webhook request"
        return f"error: {type(exc).__name__}"

    async def close(self) -> None:
        """Close every connection; a later ``post`` opens new ones."""
        await self._pool.close()
