"""GET /metrics: the Prometheus text format.

Open by default, like most exporters (the server listens on loopback unless told
otherwise); with ``metrics_require_token`` it needs the admin bearer token.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from flowhook.http.deps import require_admin, services_of

router = APIRouter(tags=["health"])


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    services = services_of(request)
    if services.settings.metrics_require_token:
        await require_admin(request)
    await services.delivery_control.refresh_metrics()
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def install(app: FastAPI) -> None:
    """Route GET /metrics (one line at the end of create_app)."""
    app.include_router(router)
