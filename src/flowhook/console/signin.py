"""Signing in with the admin token and signing out."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from flowhook.console.auth import (
    CSRF_FIELD,
    behind_tls,
    clear_session_cookie,
    set_session_cookie,
)
from flowhook.console.web import SECURITY_HEADERS, console_of, read_form, safe_next
from flowhook.errors import FlowhookError
from flowhook.http.errors import status_for


async def login_page(request: Request) -> Response:
    console = console_of(request)
    target = safe_next(request.query_params.get("next"))
    if console.auth.session_of(request) is not None:
        return RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
    signed_out = request.query_params.get("notice") == "signed-out"
    return console.html(request, "login.html", next=target, signed_out=signed_out)


async def login(request: Request) -> Response:
    console = console_of(request)
    try:
        form = await read_form(request)
    except FlowhookError as exc:
        return console.html(request, "login.html", status=status_for(exc), problem=exc.message)
    target = safe_next(form.get("next"))
    if not console.auth.token_matches(form.get("token", "")):
        return console.html(
            request,
            "login.html",
            status=401,
            next=target,
            problem="That is not the admin token of this server. It was printed when the "
            "server started, and is stored in the data directory's admin-token file "
            "(or set by FLOWHOOK_ADMIN_TOKEN).",
        )
    cookie, _session = console.auth.issue()
    response = RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
    set_session_cookie(response, cookie, behind_tls(request, console.services.settings.base_url))
    return response


async def logout(request: Request) -> Response:
    console = console_of(request)
    session = console.auth.session_of(request)
    if session is None:
        return RedirectResponse("/login", status_code=303, headers=SECURITY_HEADERS)
    try:
        form = await read_form(request)
    except FlowhookError as exc:
        return console.html(request, "error.html", status=status_for(exc), error=exc)
    if not console.auth.csrf_ok(session, form.get(CSRF_FIELD)):
        return console.html(request, "csrf.html", status=403, session=session)
    console.auth.sign_out(session)
    response = RedirectResponse(
        "/login?notice=signed-out", status_code=303, headers=SECURITY_HEADERS
    )
    clear_session_cookie(response, behind_tls(request, console.services.settings.base_url))
    return response


ROUTES = [
    Route("/login", login_page, methods=["GET", "HEAD"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
]
