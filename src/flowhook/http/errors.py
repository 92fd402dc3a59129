"""Every error becomes a JSON body that names the problem; the status mapping lives here."""

from __future__ import annotations

from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from flowhook import errors as e

log = structlog.get_logger(__name__)

STATUS: dict[type[e.FlowhookError], int] = {
    e.InvalidRequest: 400,
    e.Unauthorized: 401,
    e.NotFound: 404,
    e.Conflict: 409,
    e.PayloadTooLarge: 413,
    e.Unprocessable: 422,
    e.FlowError: 422,
    e.StorageError: 503,
    e.Overloaded: 503,
    e.RateLimited: 429,
    e.TurnTimeout: 504,
    e.TransformerFailed: 502,
}


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def status_for(exc: e.FlowhookError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def error_response(exc: e.FlowhookError) -> JSONResponse:
    status = status_for(exc)
    headers: dict[str, str] | None = None
    if status == 401 and "header" not in exc.details:
        headers = {"WWW-Authenticate": "Bearer"}
    elif "retry_after" in exc.details:
        headers = {"Retry-After": str(exc.details["retry_after"])}
    return JSONResponse(exc.to_json(), status_code=status, headers=headers)


def _validation_message(err: dict[str, Any]) -> tuple[str, str]:
    loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
    field = ".".join(loc) or "body"
    return field, str(err.get("msg", "invalid value"))


def install(app: FastAPI) -> None:
    @app.exception_handler(e.FlowhookError)
    async def _flowhook_error(_req: Request, exc: e.FlowhookError) -> Response:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_req: Request, exc: RequestValidationError) -> Response:
        problems = []
        for err in exc.errors():
            field, msg = _validation_message(err)
            problems.append({"field": field, "message": msg})
        first = problems[0] if problems else {"field": "body", "message": "invalid request"}
        body = {
            "error": {
                "code": "invalid_request",
                "message": f"{first['field']}: {first['message']}",
                "field": first["field"],
                "problems": problems,
            }
        }
        return JSONResponse(body, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_req: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            {"error": {"code": code, "message": str(exc.detail)}},
            status_code=exc.status_code,
            headers=exc.headers,
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
