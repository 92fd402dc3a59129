"""The admin REST API: endpoints and their API keys (bearer-token protected)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from flowhook.endpoints.models import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyView,
    EndpointCreate,
    EndpointUpdate,
    EndpointView,
)
from flowhook.http.deps import require_admin, services_of

router = APIRouter(prefix="/api/v1", tags=["admin"], dependencies=[Depends(require_admin)])


@router.post("/endpoints", status_code=201, response_model=EndpointView)
async def create_endpoint(body: EndpointCreate, request: Request) -> EndpointView:
    return await services_of(request).endpoints.create(body)


@router.get("/endpoints", response_model=list[EndpointView])
async def list_endpoints(request: Request) -> list[EndpointView]:
    return await services_of(request).endpoints.list_all()


@router.get("/endpoints/{endpoint_id}", response_model=EndpointView)
async def get_endpoint(endpoint_id: str, request: Request) -> EndpointView:
    return await services_of(request).endpoints.get(endpoint_id)


@router.patch("/endpoints/{endpoint_id}", response_model=EndpointView)
async def update_endpoint(endpoint_id: str, body: EndpointUpdate, request: Request) -> EndpointView:
    return await services_of(request).endpoints.update(endpoint_id, body)


@router.delete("/endpoints/{endpoint_id}", status_code=204, response_class=Response)
async def delete_endpoint(endpoint_id: str, request: Request) -> Response:
    await services_of(request).endpoints.delete(endpoint_id)
    return Response(status_code=204)


@router.post("/endpoints/{endpoint_id}/api-keys", status_code=201, response_model=ApiKeyCreated)
async def create_api_key(
    endpoint_id: str, request: Request, body: ApiKeyCreate | None = None
) -> ApiKeyCreated:
    return await services_of(request).endpoints.create_key(endpoint_id, body or ApiKeyCreate())


@router.get("/endpoints/{endpoint_id}/api-keys", response_model=list[ApiKeyView])
async def list_api_keys(endpoint_id: str, request: Request) -> list[ApiKeyView]:
    return await services_of(request).endpoints.list_keys(endpoint_id)


@router.delete(
    "/endpoints/{endpoint_id}/api-keys/{key_id}", status_code=204, response_class=Response
)
async def revoke_api_key(endpoint_id: str, key_id: str, request: Request) -> Response:
    await services_of(request).endpoints.revoke_key(endpoint_id, key_id)
    return Response(status_code=204)


@router.get("/flows", response_model=list[str])
async def list_flows(request: Request) -> list[str]:
    return services_of(request).engine.flow_names()
