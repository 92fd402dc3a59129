"""Every error becomes the one JSON error body; the status mapping lives here.

The body is ``{"error": {"code", "message", ...}}`` with camelCase keys, the same for
every route (the ingress fast path included). Every request refused for what it says
(a missing field, a wrong type, malformed JSON, an unknown flow, a snapshot that does not
fit) is a 400; 422 is never used. ``ErrorBody`` is the schema the OpenAPI document
names for every 4xx and 5xx.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from flowhook import errors as e

log = structlog.get_logger(__name__)

STATUS: dict[type[e.FlowhookError], int] = {
    e.InvalidRequest: 400,
    e.Unprocessable: 400,
    e.FlowError: 400,
    e.Unauthorized: 401,
    e.NotFound: 404,
    e.Conflict: 409,
    e.PayloadTooLarge: 413,
    e.UnsupportedMediaType: 415,
    e.RateLimited: 429,
    e.StorageError: 503,
    e.Overloaded: 503,
    e.TurnTimeout: 504,
    e.TransformerFailed: 502,
}

REASONS = {
    400: "The request is not valid; the error names the field and what was expected.",
    401: "The credentials are missing or not valid.",
    404: "Nothing exists at this path or with this id.",
    405: "The path exists but not with this method; Allow lists the methods it has.",
    409: "It conflicts with something that exists (e.g. the same name).",
    413: "The body is larger than the configured limit (FLOWHOOK_MAX_BODY_BYTES).",
    415: "The body is not sent as application/json.",
    429: "The endpoint's rate limit is exceeded; retry after Retry-After seconds.",
    503: "The database is unavailable, or too much work is waiting; retry later.",
    504: "A rest endpoint's turn did not finish in time (it still runs).",
}


class Problem(BaseModel):
    field: str | None = Field(default=None, description="The field, dotted (e.g. nodes.0.id).")
    message: str


class ErrorDetail(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    code: str = Field(description="Stable, machine-readable kind, e.g. invalid_request.")
    message: str = Field(description="Written for people; names the problem.")
    field: str | None = Field(default=None, description="The field at fault (camelCase).")
    expected: str | None = Field(default=None, description="What the field should hold.")
    problems: list[Problem] | None = Field(
        default=None, description="Every problem found, when there are several."
    )
    retry_after: int | None = Field(default=None, description="Seconds to wait (429, 503).")


class ErrorBody(BaseModel):
    """The one error shape of the whole API."""

    error: ErrorDetail


def documented(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route that answers these statuses besides the usual ones."""
    return {code: {"model": ErrorBody, "description": REASONS[code]} for code in codes}


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def status_for(exc: e.FlowhookError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def error_body(exc: e.FlowhookError) -> dict[str, Any]:
    """``{"error": {...}}`` with camelCase keys; problems as ``{field?, message}``."""
    detail: dict[str, Any] = {"code": exc.code, "message": exc.message}
    for key, value in exc.details.items():
        detail[to_camel(key)] = value
    if "problems" in detail:
        detail["problems"] = [
            p if isinstance(p, dict) else {"message": str(p)} for p in detail["problems"]
        ]
    return {"error": detail}


def error_response(exc: e.FlowhookError) -> JSONResponse:
    status = status_for(exc)
    headers: dict[str, str] | None = None
    if status == 401 and "header" not in exc.details:
        headers = {"WWW-Authenticate": "Bearer"}
    elif "retry_after" in exc.details:
        headers = {"Retry-After": str(exc.details["retry_after"])}
    return JSONResponse(error_body(exc), status_code=status, headers=headers)


_VALUE_ERROR = re.compile(r"^(Value|Assertion) error, ")


def human_message(err: dict[str, Any]) -> str:
    """pydantic's message without its internal prefixes, in words a person reads."""
    kind = err.get("type", "")
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a known field"
    return _VALUE_ERROR.sub("", str(err.get("msg", "is not valid")))


def field_of(loc: Any) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def validation_body(errors: list[dict[str, Any]]) -> dict[str, Any]:
    problems = [
        {"field": field_of(err.get("loc", ())), "message": human_message(err)} for err in errors
    ]
    first = problems[0] if problems else {"field": "body", "message": "is not valid"}
    return {
        "error": {
            "code": "invalid_request",
            "message": f"{first['field']}: {first['message']}",
            "field": first["field"],
            "problems": problems,
        }
    }


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the application answers on this path."""
    methods: set[str] = set()
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            methods.add(method)
    if "GET" in methods:
        methods.add("HEAD")
    if methods:
        methods.add("OPTIONS")
    return sorted(methods)


def install(app: FastAPI) -> None:
    @app.exception_handler(e.FlowhookError)
    async def _flowhook_error(_req: Request, exc: e.FlowhookError) -> Response:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_req: Request, exc: RequestValidationError) -> Response:
        return JSONResponse(validation_body(list(exc.errors())), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(req: Request, exc: StarletteHTTPException) -> Response:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            allow = allowed_methods(req)
            headers["Allow"] = ", ".join(allow)
            message = f"{req.method} is not allowed here; allowed: {', '.join(allow)}"
        elif exc.status_code == 404:
            message = f"nothing at {req.url.path}"
        else:
            message = str(exc.detail)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            {"error": {"code": code, "message": message}},
            status_code=exc.status_code,
            headers=headers,
        )

    @app.exception_handler(Exception)
    async def _unexpected(req: Request, exc: Exception) -> Response:
        log.error(
            "http.unexpected_error", path=req.url.path, error=type(exc).__name__, exc_info=exc
        )
        return JSONResponse(
            {"error": {"code": "internal_error", "message": "an unexpected error occurred"}},
            status_code=500,
        )
