"""Deliveries: pending, failed and delivered outputs of an endpoint, each attempt, replay
one or all failed, switch delivery on or off."""

from __future__ import annotations

from typing import cast, get_args

from starlette.responses import Response

from flowhook.console.queries import ConsoleQueries, DeliveryHealth
from flowhook.console.web import Page, page
from flowhook.delivery.models import DeliveryStatus
from flowhook.endpoints.models import EndpointUpdate

STATUSES = get_args(DeliveryStatus)


@page("/console/endpoints/{endpoint_id}/deliveries")
async def deliveries(pg: Page) -> Response:
    services = pg.services
    view = await services.endpoints.get(pg.param("endpoint_id"))
    asked = pg.query("status")
    chosen = cast(DeliveryStatus, asked) if asked in STATUSES else None
    session_id = pg.query("session").strip() or None
    listing = await services.deliveries.list(
        view.id, status=chosen, session_id=session_id, limit=50, cursor=pg.query("cursor") or None
    )
    health = (await ConsoleQueries(services.store).delivery_health()).get(view.id, DeliveryHealth())
    return pg.render(
        "deliveries.html",
        endpoint=view,
        listing=listing,
        chosen_status=chosen or "",
        session_id=session_id or "",
        statuses=STATUSES,
        health=health,
        tab="deliveries",
        title=f"{view.name} · deliveries",
    )


@page("/console/deliveries/{delivery_id}")
async def delivery(pg: Page) -> Response:
    services = pg.services
    detail = await services.deliveries.show(pg.param("delivery_id"))
    view = await services.endpoints.get(detail.endpoint_id.removeprefix("handover:"))
    return pg.render(
        "delivery.html",
        endpoint=view,
        delivery=detail,
        tab="deliveries",
        title=f"Delivery {detail.id}",
    )


@page("/console/deliveries/{delivery_id}/replay", change=True)
async def replay(pg: Page) -> Response:
    replayed = await pg.services.deliveries.replay(pg.param("delivery_id"))
    return pg.redirect(f"/console/deliveries/{replayed.id}", "replayed")


@page("/console/endpoints/{endpoint_id}/deliveries/replay-failed", change=True)
async def replay_failed(pg: Page) -> Response:
    endpoint_id = pg.param("endpoint_id")
    await pg.services.deliveries.replay_failed(endpoint_id)
    return pg.redirect(f"/console/endpoints/{endpoint_id}/deliveries", "replayed-all")


@page("/console/endpoints/{endpoint_id}/deliveries/switch", change=True)
async def switch_delivery(pg: Page) -> Response:
    endpoint_id = pg.param("endpoint_id")
    enable = pg.form.get("enabled") == "true"
    await pg.services.endpoints.update(endpoint_id, EndpointUpdate(delivery_enabled=enable))
    notice = "enabled" if enable else "paused"
    return pg.redirect(f"/console/endpoints/{endpoint_id}/deliveries", notice)
