"""GET /metrics: the Prometheus text format.

Open by default, like most exporters: the server listens on loopback unless told
otherwise, and what metrics show (counts, latencies, endpoint ids in labels) is no
credential. Two settings close it further:

- ``metrics_require_token``: scrapes need the admin bearer token;
- ``metrics_port`` (and ``metrics_host``, default 127.0.0.1): metrics are served by
  a listener of their own on that address, and the main port answers 404 for
  /metrics, so the public address need not show them at all.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web
from fastapi import APIRouter, FastAPI, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from flowhook.http.deps import require_admin, services_of
from flowhook.services import Services

router = APIRouter(tags=["health"])


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    services = services_of(request)
    if services.settings.metrics_require_token:
        await require_admin(request)
    return Response(await scrape(services), media_type=CONTENT_TYPE_LATEST)


async def scrape(services: Services) -> bytes:
    await services.delivery_control.refresh_metrics()
    return generate_latest(services.metrics.registry)


def install(app: FastAPI) -> None:
    """Route GET /metrics (one line at the end of create_app), unless metrics have a
    listener of their own."""
    services: Services = app.state.services
    if services.settings.metrics_port is None:
        app.include_router(router)


@asynccontextmanager
async def separate_listener(services: Services) -> AsyncIterator[None]:
    """While the app runs: the metrics listener on ``metrics_host:metrics_port``, if set."""
    settings = services.settings
    if settings.metrics_port is None:
        yield
        return

    async def handle(request: web.Request) -> web.Response:
        if settings.metrics_require_token and not _has_token(request, services.admin_token):
            return web.json_response(
                {"error": {"code": "unauthorized", "message": "metrics need the admin token"}},
                status=401,
            )
        body = await scrape(services)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
    await runner.setup()
    await web.TCPSite(runner, settings.metrics_host, settings.metrics_port).start()
    try:
        yield
    finally:
        await runner.cleanup()


def _has_token(request: web.Request, expected: str) -> bool:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        token.strip().encode(), expected.encode()
    )
