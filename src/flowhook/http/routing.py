"""Admin API routes: the token is checked before the body is read, and a body is read
once, within the size limit, and refused in plain words when it is not UTF-8 JSON.

Every admin router is made with ``admin_router(...)``; its routes then answer in the
API's conventions without each handler repeating them:

1. no valid ``Authorization: Bearer <admin token>``: 401, whatever the body holds;
2. a body over ``FLOWHOOK_MAX_BODY_BYTES``: 413, before it is read whole;
3. a body sent as something other than JSON: 415;
4. a body that is not UTF-8, or not JSON: 400 naming the byte, or the line and column.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from flowhook.errors import InvalidRequest, UnsupportedMediaType
from flowhook.http.deps import request_body, require_admin

ADMIN_SECURITY: list[dict[str, list[str]]] = [{"adminToken": []}]
Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class AdminRoute(APIRoute):
    """A route of the admin API (see the module docstring)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        extra = dict(kwargs.pop("openapi_extra", None) or {})
        extra.setdefault("security", ADMIN_SECURITY)
        super().__init__(path, endpoint, openapi_extra=extra, **kwargs)

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        reads_body = self.body_field is not None or "requestBody" in (self.openapi_extra or {})

        async def checked(request: Request) -> Response:
            await require_admin(request)
            if reads_body:
                body = await request_body(request)
                if body.strip():
                    check_json_body(body, request.headers.get("content-type"))
            return await handler(request)

        return checked


def admin_router(prefix: str, tags: list[str]) -> APIRouter:
    return APIRouter(prefix=prefix, tags=list(tags), route_class=AdminRoute)


def is_json_media_type(content_type: str | None) -> bool:
    if content_type is None:
        return True  # curl --data without -H: read it as JSON all the same
    media = content_type.split(";", 1)[0].strip().lower()
    return media in ("", "application/json") or media.endswith("+json")


def check_json_body(body: bytes, content_type: str | None) -> None:
    """Refuse a body that is not UTF-8 JSON, saying where it goes wrong."""
    if content_type is not None and not is_json_media_type(content_type):
        raise UnsupportedMediaType(
            f"the body is sent as {content_type.split(';', 1)[0]}",
            field="Content-Type",
            expected="application/json",
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(
            f"the body is not valid UTF-8: byte 0x{body[exc.start]:02x} at offset {exc.start}",
            field="body",
            expected="JSON encoded as UTF-8",
        ) from None
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
            field="body",
            expected="a JSON document",
        ) from None
    except RecursionError:
        raise InvalidRequest(
            "the body is nested too deeply", field="body", expected="a JSON document"
        ) from None
