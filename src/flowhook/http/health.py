"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from flowhook.errors import StorageError
from flowhook.http.deps import services_of
from flowhook.http.errors import JSONResponse

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> Response:
    return JSONResponse({"status": "ok"})


@router.get("/readyz", summary="Storage answers and the workers run")
async def readyz(request: Request) -> Response:
    services = services_of(request)
    try:
        await services.store.ping()
    except StorageError as exc:
        return JSONResponse({"status": "unavailable", "storage": str(exc)}, status_code=503)
    return JSONResponse({"status": "ready", "storage": services.store.backend})
