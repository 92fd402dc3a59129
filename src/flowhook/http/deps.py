"""Reaching the services from a request, and the admin API's bearer-token check."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from fastapi import Request
from starlette.responses import Response

from flowhook.errors import Unauthorized
from flowhook.http.fast_ingress import read_limited, trace_id_body

if TYPE_CHECKING:
    from flowhook.services import Services


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def is_admin(request: Request) -> bool:
    """Whether the request carries the valid admin token (checked in constant time)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    expected = services_of(request).admin_token
    return (
        scheme.lower() == "bearer"
        and bool(token)
        and hmac.compare_digest(token.strip().encode(), expected.encode())
    )


async def require_admin(request: Request) -> None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("the admin API needs an 'Authorization: Bearer <admin token>' header")
    expected = services_of(request).admin_token
    if not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise Unauthorized("the admin token is not valid")


async def request_body(request: Request) -> bytes:
    """The body, refusing (413) one over the configured limit before reading it all.
    Read once: later readers (FastAPI's body parsing included) get the same bytes."""
    cached: bytes | None = getattr(request, "_body", None)
    if cached is not None:
        return cached
    declared = request.headers.get("content-length")
    body = await read_limited(
        request.receive,
        None if declared is None else declared.encode(),
        services_of(request).settings.max_body_bytes,
    )
    request._body = body
    return body


ACCEPTED_DOC = {
    "description": "Committed; it runs in the session's order.",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["traceId"],
                "properties": {"traceId": {"type": "string"}},
            }
        }
    },
}


def accepted_response(trace_id: str) -> Response:
    return Response(trace_id_body(trace_id), status_code=202, media_type="application/json")
