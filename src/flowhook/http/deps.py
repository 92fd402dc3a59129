"""Reaching the services from a request, and the admin API's bearer-token check."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from fastapi import Request

from flowhook.errors import Unauthorized

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
