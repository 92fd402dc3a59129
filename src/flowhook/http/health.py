"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.responses import Response

from flowhook.errors import StorageError
from flowhook.http.deps import services_of
from flowhook.http.errors import JSONResponse, documented, error_response

router = APIRouter(tags=["health"])


class Alive(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready"]
    storage: str


@router.get("/healthz", summary="The process is alive", response_model=Alive)
async def healthz() -> Response:
    return JSONResponse({"status": "ok"})


@router.get(
    "/readyz",
    summary="Storage answers and the workers run",
    response_model=Ready,
    responses=documented(503),
)
async def readyz(request: Request) -> Response:
    services = services_of(request)
    try:
        await services.store.ping()
    except StorageError as exc:
        return error_response(exc)
    return JSONResponse({"status": "ready", "storage": services.store.backend})
