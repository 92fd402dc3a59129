"""Console sessions: signed, expiring, bound to the admin token, ended by signing out;
CSRF tokens bound to the session; the next-page target stays on this server."""

from __future__ import annotations

from starlette.requests import Request

from flowhook.console.auth import COOKIE, SESSION_SECONDS, ConsoleAuth
from flowhook.console.web import safe_next


def request_with(cookie: str) -> Request:
    headers = [(b"cookie", f"{COOKIE}={cookie}".encode())]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers})


def test_a_session_cookie_is_accepted_until_it_expires() -> None:
    """The cookie issued at sign-in opens the console for its lifetime, not after."""
    auth = ConsoleAuth("admin-token-1")
    cookie, session = auth.issue(now=1_000_000)
    assert auth.session_of(request_with(cookie), now=1_000_010) == session
    assert auth.session_of(request_with(cookie), now=1_000_000 + SESSION_SECONDS + 1) is None


def test_a_tampered_or_foreign_cookie_is_refused() -> None:
    """Changing any part of the cookie, or a cookie signed for another admin token (the
    token was changed), gives no session."""
    auth = ConsoleAuth("admin-token-1")
    cookie, _ = auth.issue(now=1_000_000)
    issued, nonce, signature = cookie.split(".")
    other_last = "1" if signature.endswith("0") else "0"  # a real change, whatever it ends in
    for forged in (
        f"{int(issued) + 5000}.{nonce}.{signature}",
        f"{issued}.{nonce}x.{signature}",
        f"{issued}.{nonce}.{signature[:-1]}{other_last}",
        "",
        "...",
        "1.2",
    ):
        assert auth.session_of(request_with(forged), now=1_000_001) is None, forged
    assert ConsoleAuth("admin-token-2").session_of(request_with(cookie), now=1_000_001) is None


def test_signing_out_ends_the_session_and_csrf_is_per_session() -> None:
    """After sign-out the same cookie is refused; a CSRF token only fits its own session."""
    auth = ConsoleAuth("admin-token-1")
    cookie_a, a = auth.issue(now=1_000_000)
    _, b = auth.issue(now=1_000_000)
    assert auth.csrf_ok(a, a.csrf)
    assert not auth.csrf_ok(a, b.csrf)
    assert not auth.csrf_ok(a, None)
    assert not auth.csrf_ok(a, "")
    auth.sign_out(a)
    assert auth.session_of(request_with(cookie_a), now=1_000_001) is None


def test_the_admin_token_check_ignores_surrounding_space_only() -> None:
    """A pasted token with a trailing newline signs in; any other difference does not."""
    auth = ConsoleAuth("admin-token-1")
    assert auth.token_matches("admin-token-1\n")
    assert not auth.token_matches("admin-token-")
    assert not auth.token_matches("")


def test_after_sign_in_only_local_paths_are_followed() -> None:
    """The next page after sign-in is a path here; other sites and odd forms go to /."""
    assert safe_next("/console/flows?x=1") == "/console/flows?x=1"
    for target in (None, "", "https://evil.example/", "//evil.example/", "/\\evil", "/login"):
        assert safe_next(target) == "/", target


def test_the_cookie_is_secure_behind_tls_only() -> None:
    """The session cookie is HttpOnly and SameSite=Strict always, Secure when the console
    is reached over TLS or its public URL is https."""
    from starlette.responses import Response

    from flowhook.console.auth import behind_tls, set_session_cookie

    plain = Request(
        {
            "type": "http",
            "scheme": "http",
            "method": "GET",
            "path": "/",
            "headers": [(b"host", b"h")],
        }
    )
    tls = Request(
        {
            "type": "http",
            "scheme": "https",
            "method": "GET",
            "path": "/",
            "headers": [(b"host", b"h")],
        }
    )
    assert not behind_tls(plain, "http://127.0.0.1:8080")
    assert behind_tls(tls, "http://127.0.0.1:8080")
    assert behind_tls(plain, "https://bots.example.com")
    for secure in (False, True):
        response = Response()
        set_session_cookie(response, "v", secure)
        header = response.headers["set-cookie"].lower()
        assert "httponly" in header
        assert "samesite=strict" in header
        assert ("secure" in header.replace("samesite", "")) is secure
