"""The console's request plumbing: sign-in check, CSRF check, forms, rendering, errors.

Console pages are plain Starlette routes (not part of the OpenAPI document). Each page
handler gets a ``Page``: the request, the services, the signed-in session and, for a
change, the submitted form. Errors of the one error tree become an HTML page with the
same status the admin API would answer with.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from flowhook.console import filters
from flowhook.console.auth import CSRF_FIELD, CSRF_HEADER, ConsoleAuth, ConsoleSession
from flowhook.errors import FlowhookError, InvalidRequest
from flowhook.http.deps import request_body
from flowhook.http.errors import status_for

if TYPE_CHECKING:
    from flowhook.services import Services

# Pages only load what flowhook serves itself; nothing inline, nothing from elsewhere.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

NOTICES = {
    "created": "Endpoint created.",
    "saved": "Changes saved.",
    "deleted": "Endpoint deleted.",
    "revoked": "API key revoked.",
    "replayed": "Delivery queued again.",
    "replayed-all": "Failed deliveries queued again.",
    "enabled": "Delivery switched on: pending outputs are being sent.",
    "paused": "Delivery paused: outputs are kept until it is switched on.",
    "signing-off": "Signing switched off; the secrets are deleted.",
    "sent": "Reply queued for the user.",
    "handed-over": "Session handed over to an agent.",
    "handed-back": "Handover ended: the flow answers again.",
    "signed-out": "You are signed out.",
}


class Console:
    """What every console page shares: the services, sign-in and the templates."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.auth = ConsoleAuth(services.admin_token)
        self.templates = Environment(
            loader=PackageLoader("flowhook.console", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        filters.install(self.templates)

    def html(
        self, request: Request, template: str, status: int = 200, **context: Any
    ) -> HTMLResponse:
        context.setdefault("session", None)
        text = self.templates.get_template(template).render(
            request=request, path=request.url.path, **context
        )
        return HTMLResponse(text, status_code=status, headers=SECURITY_HEADERS)


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


@dataclass
class Page:
    request: Request
    console: Console
    session: ConsoleSession
    form: dict[str, str] = field(default_factory=dict)

    @property
    def services(self) -> Services:
        return self.console.services

    def param(self, name: str) -> str:
        return str(self.request.path_params[name])

    def query(self, name: str, default: str = "") -> str:
        # NUL cannot be stored in any text column (PostgreSQL refuses it): no id has one.
        return self.request.query_params.get(name, default).replace("\x00", "")

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        notice = NOTICES.get(self.query("notice"))
        context.setdefault("notice", notice)
        return self.console.html(self.request, template, status, session=self.session, **context)

    def redirect(self, url: str, notice: str | None = None) -> RedirectResponse:
        if notice is not None:
            url += ("&" if "?" in url else "?") + "notice=" + notice
        return RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)


Handler = Callable[[Page], Awaitable[Response]]
ROUTES: list[Route] = []


def page(path: str, *, change: bool = False) -> Callable[[Handler], Handler]:
    """Register a console page. ``change``: a POST that must carry the CSRF token."""

    def register(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            console = console_of(request)
            session = console.auth.session_of(request)
            if session is None:
                if change:
                    return console.html(request, "signed_out.html", status=401)
                return RedirectResponse(
                    "/login?next=" + quote(_local_path(request), safe="/"),
                    status_code=303,
                    headers=SECURITY_HEADERS,
                )
            pg = Page(request, console, session)
            try:
                if change:
                    pg.form = await read_form(request)
                    presented = pg.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
                    if not console.auth.csrf_ok(session, presented):
                        return pg.render("csrf.html", status=403)
                return await handler(pg)
            except FlowhookError as exc:
                return pg.render("error.html", status=status_for(exc), error=exc)

        ROUTES.append(Route(path, endpoint, methods=["POST"] if change else ["GET", "HEAD"]))
        return handler

    return register


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form, within the configured body limit (last value of a name wins)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request_body(request) if request.method == "POST" else b""
    if kind not in ("", "application/x-www-form-urlencoded"):
        raise InvalidRequest(
            "the console accepts forms only",
            field="Content-Type",
            expected="application/x-www-form-urlencoded",
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("the form is not UTF-8", expected="UTF-8 text") from None
    try:
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=500)
    except ValueError:
        raise InvalidRequest("the form has too many fields", expected="at most 500") from None
    return {k: v.replace("\x00", "") for k, v in pairs}


def _local_path(request: Request) -> str:
    path = request.url.path
    return path + ("?" + request.url.query if request.url.query else "")


def safe_next(target: str | None) -> str:
    """Where to go after signing in: only a path on this server, never another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if PurePosixPath(target.split("?")[0]).parts[:2] == ("/", "login"):
        return "/"
    return target


__all__ = [
    "ROUTES",
    "SECURITY_HEADERS",
    "Console",
    "Page",
    "console_of",
    "page",
    "read_form",
    "safe_next",
]
