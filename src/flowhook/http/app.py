"""The ASGI application: routes, error handlers, and the services' life cycle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from flowhook import __version__, console
from flowhook.http import (
    admin,
    cluster,
    copilot,
    errors,
    handover,
    health,
    ingress,
    insights,
    messages,
    metrics,
    openapi,
)
from flowhook.http.fast_ingress import IngressFastPath
from flowhook.http.snapshots import router as snapshot_router
from flowhook.services import Services


def create_app(services: Services) -> IngressFastPath | FastAPI:
    """The HTTP API. A worker-only process (role worker) serves health and metrics only:
    its clients are the load balancer's probes and Prometheus, not chat channels."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await services.start()
        try:
            async with metrics.separate_listener(services):  # when metrics_port is set
                yield
        finally:
            await services.stop()

    app = FastAPI(
        title="flowhook",
        version=__version__,
        description=(
            "A Webhook Endpoint for conversational AI agents. Clients POST messages to an "
            "endpoint URL; bot outputs are POSTed asynchronously to the endpoint's webhook."
        ),
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.services = services
    errors.install(app)
    openapi.install(app)
    if services.settings.role == "worker":
        app.include_router(health.router)
        metrics.install(app)
        return app
    app.include_router(ingress.router)
    app.include_router(admin.router)
    app.include_router(messages.router)
    app.include_router(cluster.router)
    app.include_router(snapshot_router)
    app.include_router(health.router)
    app.include_router(insights.router)
    app.include_router(handover.router)
    app.include_router(copilot.router)
    metrics.install(app)  # GET /metrics
    console.install(app, services)  # the web console at /
    # The hot route is answered ahead of FastAPI; everything else goes through it.
    return IngressFastPath(app, services)
