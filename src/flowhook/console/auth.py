"""Console sign-in: the admin token buys a signed session cookie; every change needs a
CSRF token derived from that session.

Sessions are stateless (an HMAC over issue time and a random nonce, keyed by the admin
token), so every API process of a cluster accepts them and changing the admin token
signs everyone out. Signing out forgets the nonce in this process and deletes the cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

COOKIE = "flowhook_console"
SESSION_SECONDS = 12 * 3600
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
_FORGOTTEN_MAX = 10_000


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    nonce: str
    issued_at: float
    csrf: str


class ConsoleAuth:
    def __init__(self, admin_token: str) -> None:
        self._admin_token = admin_token
        self._key = hmac.new(
            admin_token.encode(), b"flowhook console session v1", hashlib.sha256
        ).digest()
        self._signed_out: OrderedDict[str, None] = OrderedDict()

    def token_matches(self, candidate: str) -> bool:
        """Whether ``candidate`` is the admin token (constant time)."""
        return hmac.compare_digest(candidate.strip().encode(), self._admin_token.encode())

    def _sign(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    def _csrf_for(self, nonce: str) -> str:
        return self._sign(f"csrf.{nonce}")[:40]

    def issue(self, now: float | None = None) -> tuple[str, ConsoleSession]:
        """A new session: the cookie value and the session it stands for."""
        issued = int(time.time() if now is None else now)
        nonce = secrets.token_urlsafe(18)
        body = f"{issued}.{nonce}"
        return f"{body}.{self._sign(body)}", ConsoleSession(nonce, issued, self._csrf_for(nonce))

    def session_of(self, request: Request, now: float | None = None) -> ConsoleSession | None:
        """The valid session the request's cookie carries, or None."""
        raw = request.cookies.get(COOKIE, "")
        issued_text, _, rest = raw.partition(".")
        nonce, _, signature = rest.rpartition(".")
        if not (issued_text.isdigit() and nonce and signature):
            return None
        if not hmac.compare_digest(signature, self._sign(f"{issued_text}.{nonce}")):
            return None
        issued = int(issued_text)
        current = time.time() if now is None else now
        if not issued <= current + 60 or current - issued > SESSION_SECONDS:
            return None
        if nonce in self._signed_out:
            return None
        return ConsoleSession(nonce, issued, self._csrf_for(nonce))

    def csrf_ok(self, session: ConsoleSession, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(str(presented), session.csrf)

    def sign_out(self, session: ConsoleSession) -> None:
        self._signed_out[session.nonce] = None
        while len(self._signed_out) > _FORGOTTEN_MAX:
            self._signed_out.popitem(last=False)


def behind_tls(request: Request, base_url: str) -> bool:
    """Whether the browser talks TLS to us (directly, or to the proxy in front)."""
    return request.url.scheme == "https" or base_url.startswith("https://")


def set_session_cookie(response: Response, value: str, secure: bool) -> None:
    response.set_cookie(
        COOKIE,
        value,
        max_age=SESSION_SECONDS,
        path="/",
        httponly=True,
        samesite="strict",
        secure=secure,
    )


def clear_session_cookie(response: Response, secure: bool) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=secure)
