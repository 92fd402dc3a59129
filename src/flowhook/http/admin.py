"""The admin REST API: endpoints, their API keys and deliveries (bearer-token protected)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Query, Request
from starlette.responses import Response

from flowhook.delivery.models import (
    DeliveryDetail,
    DeliveryPage,
    DeliveryStatus,
    DeliveryView,
    ReplayFailedAnswer,
    ReplayFailedRequest,
)
from flowhook.endpoints.models import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyView,
    EndpointCreate,
    EndpointCreated,
    EndpointUpdate,
    EndpointView,
    SigningSecretRotated,
)
from flowhook.http.deps import services_of
from flowhook.http.errors import documented
from flowhook.http.pages import Cursor, IdCursor, Limit, Page, page_of
from flowhook.http.routing import admin_router

router = admin_router("/api/v1", tags=["admin"])


def _by_creation(item: EndpointView | ApiKeyView) -> str:
    return f"{item.created_at.timestamp():020.6f} {item.id}"


@router.post(
    "/endpoints", status_code=201, response_model=EndpointCreated, responses=documented(409)
)
async def create_endpoint(body: EndpointCreate, request: Request) -> EndpointCreated:
    return await services_of(request).endpoints.create(body)


@router.get("/endpoints", response_model=Page[EndpointView])
async def list_endpoints(
    request: Request, limit: Limit = 100, cursor: Cursor = None
) -> Page[EndpointView]:
    """Every endpoint, oldest first."""
    endpoints = await services_of(request).endpoints.list_all()
    return page_of(endpoints, _by_creation, limit, cursor)


@router.get("/endpoints/{endpoint_id}", response_model=EndpointView)
async def get_endpoint(endpoint_id: str, request: Request) -> EndpointView:
    return await services_of(request).endpoints.get(endpoint_id)


@router.patch("/endpoints/{endpoint_id}", response_model=EndpointView, responses=documented(409))
async def update_endpoint(endpoint_id: str, body: EndpointUpdate, request: Request) -> EndpointView:
    return await services_of(request).endpoints.update(endpoint_id, body)


@router.post("/endpoints/{endpoint_id}/signing-secret/rotate", response_model=SigningSecretRotated)
async def rotate_signing_secret(endpoint_id: str, request: Request) -> SigningSecretRotated:
    return await services_of(request).endpoints.rotate_signing_secret(endpoint_id)


@router.delete("/endpoints/{endpoint_id}", status_code=204, response_class=Response)
async def delete_endpoint(endpoint_id: str, request: Request, force: bool = False) -> Response:
    """409 while messages or outputs are pending; ``force=true`` fails each of them."""
    await services_of(request).endpoints.delete(endpoint_id, force=force)
    return Response(status_code=204)


@router.post("/endpoints/{endpoint_id}/api-keys", status_code=201, response_model=ApiKeyCreated)
async def create_api_key(
    endpoint_id: str, request: Request, body: ApiKeyCreate | None = None
) -> ApiKeyCreated:
    return await services_of(request).endpoints.create_key(endpoint_id, body or ApiKeyCreate())


@router.get("/endpoints/{endpoint_id}/api-keys", response_model=Page[ApiKeyView])
async def list_api_keys(
    endpoint_id: str, request: Request, limit: Limit = 100, cursor: Cursor = None
) -> Page[ApiKeyView]:
    """The endpoint's API keys (prefixes only), oldest first."""
    keys = await services_of(request).endpoints.list_keys(endpoint_id)
    return page_of(keys, _by_creation, limit, cursor)


@router.delete(
    "/endpoints/{endpoint_id}/api-keys/{key_id}", status_code=204, response_class=Response
)
async def revoke_api_key(endpoint_id: str, key_id: str, request: Request) -> Response:
    await services_of(request).endpoints.revoke_key(endpoint_id, key_id)
    return Response(status_code=204)


@router.get("/flows", response_model=Page[str])
async def list_flows(request: Request, limit: Limit = 100, cursor: Cursor = None) -> Page[str]:
    """The names of the flows the server runs, in name order."""
    return page_of(services_of(request).engine.flow_names(), str, limit, cursor)


# -- deliveries: the attempt log, dead letters, replay ---------------------------------------


@router.get("/endpoints/{endpoint_id}/deliveries", response_model=DeliveryPage)
async def list_deliveries(
    endpoint_id: str,
    request: Request,
    status: DeliveryStatus | None = None,
    session_id: Annotated[str | None, Query(alias="sessionId")] = None,
    since: Annotated[datetime | None, Query(description="Created at or after (ISO 8601).")] = None,
    until: Annotated[datetime | None, Query(description="Created before (ISO 8601).")] = None,
    limit: Limit = 50,
    cursor: IdCursor = None,
) -> DeliveryPage:
    """An endpoint's deliveries, newest first; filter by status, session and time."""
    return await services_of(request).deliveries.list(
        endpoint_id,
        session_id=session_id,
        status=status,
        since=since,
        until=until,
        limit=limit,
        cursor=cursor,
    )


@router.post(
    "/endpoints/{endpoint_id}/deliveries/replay-failed",
    status_code=202,
    response_model=ReplayFailedAnswer,
)
async def replay_failed_deliveries(
    endpoint_id: str, request: Request, body: ReplayFailedRequest | None = None
) -> ReplayFailedAnswer:
    """Send again every failed delivery of the endpoint created in [since, until)."""
    req = body or ReplayFailedRequest()
    return await services_of(request).deliveries.replay_failed(endpoint_id, req.since, req.until)


@router.get("/deliveries/{delivery_id}", response_model=DeliveryDetail)
async def show_delivery(delivery_id: str, request: Request) -> DeliveryDetail:
    """One delivery, its payload and every attempt."""
    return await services_of(request).deliveries.show(delivery_id)


@router.post(
    "/deliveries/{delivery_id}/replay",
    status_code=202,
    response_model=DeliveryView,
    responses=documented(409),
)
async def replay_delivery(delivery_id: str, request: Request) -> DeliveryView:
    """Send one delivery again (same webhook-id); switches the endpoint's delivery back on."""
    return await services_of(request).deliveries.replay(delivery_id)
