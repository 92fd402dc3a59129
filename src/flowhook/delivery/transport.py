"""The real HTTP client behind delivery: one pooled aiohttp session, one POST per attempt.

Every failure is turned into an ``AttemptResult`` (never an exception), and every
error string is built here from the exception *type* and safe parts only: an
exception's own text can carry the URL (with userinfo) or request headers, and a
webhook password must never reach the attempt log or the process log.
"""

from __future__ import annotations

import asyncio
import base64
import math
import ssl
import time
from email.utils import parsedate_to_datetime

import aiohttp
from aiohttp.payload import BytesPayload
from multidict import CIMultiDict
from yarl import URL

from flowhook import __version__
from flowhook.delivery.ssrf import AddressGuard, BlockedAddressError, GuardedResolver
from flowhook.delivery.types import AttemptResult, WebhookTarget

BODY_EXCERPT_BYTES = 1024
USER_AGENT = f"flowhook/{__version__}"
JSON = "application/json"
# Targets whose URL and headers are kept ready; past it the memo starts afresh.
PREPARED_MAX = 1024


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date).

    Returns ``None`` when the header is absent or unreadable; a date in the past
    means 0. Fractional seconds are accepted although the RFC only allows integers.
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" zone: RFC 5322 says UTC
        return None
    return max(0.0, when.timestamp() - now)


class _Prepared:
    """What every attempt to one target shares: the parsed URL without userinfo, and
    the fixed headers (``Authorization`` computed once, not per attempt)."""

    __slots__ = ("error", "headers", "target", "url")

    def __init__(self, target: WebhookTarget) -> None:
        self.target = target  # held so that the memo's key (its id) stays its own
        self.error: str | None = None
        self.url: URL | None = None
        self.headers: tuple[tuple[str, str], ...] = ()
        try:
            url, authorization = _split_credentials(target)
        except ValueError as exc:
            self.error = str(exc)
            return
        self.url = url
        headers = [("User-Agent", USER_AGENT), ("Content-Type", JSON)]
        if authorization is not None:
            headers.append(("Authorization", authorization))
        self.headers = tuple(headers)


class AiohttpTransport:
    """``Transport`` over one shared ``aiohttp.ClientSession``.

    The session (and its keep-alive connection pool) is created on first use, inside
    the running event loop, because aiohttp binds it to the loop that creates it.
    Redirects are not followed: a 3xx is reported as the failure it is, so that a
    webhook URL cannot bounce deliveries (and credentials) somewhere else.

    With a ``guard`` every connection goes through the SSRF guard: DNS answers are
    filtered and each socket's address is checked right before it connects.
    ``ssl_context`` replaces aiohttp's default one (system CAs, host names checked).

    The delivery default is ``LeanTransport`` (``lean_transport.py``), which costs less
    CPU per POST; this one is kept as the reference its tests run against.
    """

    def __init__(
        self,
        connect_timeout: float = 5.0,
        total_timeout: float = 15.0,
        *,
        limit: int = 0,
        keepalive_timeout: float = 30.0,
        body_excerpt_bytes: int = BODY_EXCERPT_BYTES,
        guard: AddressGuard | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._ssl_context = ssl_context
        self._timeout = aiohttp.ClientTimeout(total=total_timeout, sock_connect=connect_timeout)
        self._connect_timeout = connect_timeout
        self._total_timeout = total_timeout
        self._limit = limit
        self._keepalive_timeout = keepalive_timeout
        self._excerpt_bytes = body_excerpt_bytes
        self._guard = guard
        self._session: aiohttp.ClientSession | None = None
        # Keyed by the target object: the resolver hands out the same object while the
        # endpoint's URL and credentials stay the same (a changed one is a new object).
        self._prepared: dict[int, _Prepared] = {}

    def _prepare(self, target: WebhookTarget) -> _Prepared:
        prepared = self._prepared.get(id(target))
        if prepared is None or prepared.target is not target:
            if len(self._prepared) >= PREPARED_MAX:
                self._prepared.clear()
            prepared = self._prepared[id(target)] = _Prepared(target)
        return prepared

    def _get_session(self) -> aiohttp.ClientSession:
        session = self._session
        if session is None or session.closed:
            guard = self._guard
            connector = aiohttp.TCPConnector(
                # 0: no pool-wide cap. The dispatcher caps connections per endpoint and in
                # all with fair shares; one shared cap here would let hanging endpoints
                # fill it for everybody.
                limit=self._limit,
                limit_per_host=0,
                keepalive_timeout=self._keepalive_timeout,
                ttl_dns_cache=300,
                resolver=None if guard is None else GuardedResolver(guard),
                socket_factory=None if guard is None else guard.socket_factory,
                ssl=True if self._ssl_context is None else self._ssl_context,
            )
            session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                trust_env=False,  # proxies from the environment would bypass the SSRF guard
                auto_decompress=True,
            )
            self._session = session
        return session

    async def post(
        self, target: WebhookTarget, body: bytes, headers: dict[str, str]
    ) -> AttemptResult:
        """POST ``body`` to ``target``; never raises except for cancellation."""
        started = time.perf_counter()
        prepared = self._prepare(target)
        if prepared.url is None:
            return AttemptResult(None, 0.0, error=prepared.error)
        send_headers = CIMultiDict(prepared.headers)
        send_headers.extend(headers)
        try:
            # A payload built here skips aiohttp's payload registry; its Content-Type is
            # in the headers already.
            async with self._get_session().post(
                prepared.url,
                data=BytesPayload(body, content_type=JSON),
                headers=send_headers,
                allow_redirects=False,
            ) as resp:
                status = resp.status
                # An empty answer (the usual 2xx) has nothing to read: no read call.
                excerpt = "" if resp.content.at_eof() else await self._read_excerpt(resp)
                retry_after = resp.headers.get("Retry-After")
                return AttemptResult(
                    status=status,
                    duration_ms=(time.perf_counter() - started) * 1000.0,
                    error=None if 200 <= status < 300 else f"HTTP {status}",
                    retry_after=None
                    if retry_after is None
                    else parse_retry_after(retry_after, time.time()),
                    body_excerpt=excerpt,
                )
        except Exception as exc:  # every failure becomes a result; cancellation passes
            return AttemptResult(
                status=None,
                duration_ms=(time.perf_counter() - started) * 1000.0,
                error=_scrub(self._describe(exc), target.password),
            )

    async def _read_excerpt(self, resp: aiohttp.ClientResponse) -> str:
        # Read only a prefix: a receiver answering with a huge body must not cost us
        # memory. An unread rest makes aiohttp drop (not reuse) that connection.
        chunks: list[bytes] = []
        size = 0
        while size < self._excerpt_bytes:
            chunk = await resp.content.read(self._excerpt_bytes - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks).decode("utf-8", "replace")

    def _describe(self, exc: BaseException) -> str:
        """A short, credential-free description of why there was no HTTP answer."""
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            return f"timeout connecting (after {self._connect_timeout:g}s)"
        if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
            return f"timeout (no complete answer within {self._total_timeout:g}s)"
        if isinstance(exc, aiohttp.ClientConnectorCertificateError):
            return "TLS certificate verification failed"
        if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(
            exc.os_error, BlockedAddressError
        ):
            return exc.os_error.strerror or "refused by the SSRF guard"
        if isinstance(exc, aiohttp.ClientConnectorError):
            reason = exc.os_error.strerror or type(exc.os_error).__name__
            return f"connection error: {reason}"
        if isinstance(exc, aiohttp.ServerDisconnectedError):
            return "connection error: server disconnected"
        if isinstance(exc, aiohttp.InvalidURL):
            return "invalid webhook URL"
        if isinstance(exc, aiohttp.ClientError):
            return f"connection error: {type(exc).__name__}"
        if isinstance(exc, ValueError):
            return "invalid webhook request"
        return f"error: {type(exc).__name__}"

    async def close(self) -> None:
        """Close the pool; a later ``post`` opens a new one."""
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()


def basic_auth_header(user: str, password: str) -> str:
    """``Authorization`` value for Basic Auth (RFC 7617, UTF-8)."""
    if ":" in user:
        raise ValueError("invalid basic auth user name (':' is not allowed)")
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _split_credentials(target: WebhookTarget) -> tuple[URL, str | None]:
    """The URL without userinfo, and the Authorization header to send (if any).

    Credentials configured on the endpoint win over ones written into the URL; the
    URL's are used otherwise. Either way they travel only in the header we build,
    so aiohttp never holds them in a URL it might echo in an exception.
    """
    try:
        url = URL(target.url)
    except (TypeError, ValueError):
        raise ValueError("invalid webhook URL") from None
    if not url.absolute or url.scheme not in ("http", "https"):
        raise ValueError("invalid webhook URL (http or https only)")
    user, password = target.user, target.password
    if url.user is not None or url.password is not None:
        if user is None and password is None:
            user, password = url.user, url.password
        url = url.with_user(None)
    if user is None and password is None:
        return url, None
    return url, basic_auth_header(user or "", password or "")


def _scrub(text: str, secret: str | None) -> str:
    # Belt and braces: the descriptions above never quote request data, but if one
    # ever does, the password still does not leave this module.
    if secret:
        text = text.replace(secret, "***")
    return text
