"""Endpoints: the list with delivery health, create, edit, delete; API keys; signing."""

from __future__ import annotations

from pydantic import ValidationError
from starlette.responses import Response

from flowhook.console.forms import (
    blank_form,
    changes_from,
    form_of_view,
    read_endpoint_form,
)
from flowhook.console.queries import ConsoleQueries, DeliveryHealth
from flowhook.console.web import Page, page
from flowhook.endpoints.models import ApiKeyCreate, EndpointCreate, EndpointUpdate
from flowhook.errors import FlowhookError


@page("/")
async def endpoints_list(pg: Page) -> Response:
    services = pg.services
    search = pg.query("q").strip()
    views = await services.endpoints.list_all()
    if search:
        needle = search.casefold()
        views = [
            v
            for v in views
            if needle in v.name.casefold()
            or needle in v.flow.casefold()
            or needle in (v.webhook_url or "").casefold()
            or needle == v.id
        ]
    health = await ConsoleQueries(services.store).delivery_health()
    rows = [(v, health.get(v.id, DeliveryHealth())) for v in views]
    return pg.render("endpoints.html", rows=rows, search=search, title="Endpoints")


@page("/console/endpoints/new")
async def new_endpoint(pg: Page) -> Response:
    flows = pg.services.engine.flow_names()
    return pg.render(
        "endpoint_form.html",
        form=blank_form(flows),
        flows=flows,
        endpoint=None,
        title="New endpoint",
    )


@page("/console/endpoints/new", change=True)
async def create_endpoint(pg: Page) -> Response:
    services = pg.services
    flows = services.engine.flow_names()
    doc, shown = read_endpoint_form(pg.form, editing=False)
    try:
        # Checked even when a JSON box did not parse, so every problem shows at once.
        request = EndpointCreate.model_validate(doc)
        created = None if shown.errors else await services.endpoints.create(request)
    except (ValidationError, FlowhookError) as exc:
        shown.fail(exc)
    else:
        if created is not None:
            if created.signing_secret:
                return pg.render(
                    "secret_once.html",
                    endpoint=created,
                    secret=created.signing_secret,
                    what="signing secret",
                    title="Endpoint created",
                )
            return pg.redirect(f"/console/endpoints/{created.id}", "created")
    return pg.render(
        "endpoint_form.html",
        status=400,
        form=shown,
        flows=flows,
        endpoint=None,
        title="New endpoint",
    )


@page("/console/endpoints/{endpoint_id}")
async def edit_endpoint(pg: Page) -> Response:
    view = await pg.services.endpoints.get(pg.param("endpoint_id"))
    return pg.render(
        "endpoint_form.html",
        form=form_of_view(view),
        flows=pg.services.engine.flow_names(),
        endpoint=view,
        tab="settings",
        title=view.name,
    )


@page("/console/endpoints/{endpoint_id}", change=True)
async def save_endpoint(pg: Page) -> Response:
    services = pg.services
    view = await services.endpoints.get(pg.param("endpoint_id"))
    doc, shown = read_endpoint_form(pg.form, editing=True)
    try:
        update = changes_from(doc, view, EndpointUpdate)
        assert isinstance(update, EndpointUpdate)
        if not shown.errors:
            await services.endpoints.update(view.id, update)
    except (ValidationError, FlowhookError) as exc:
        shown.fail(exc)
    if not shown.errors and shown.problem is None:
        return pg.redirect(f"/console/endpoints/{view.id}", "saved")
    return pg.render(
        "endpoint_form.html",
        status=400,
        form=shown,
        flows=services.engine.flow_names(),
        endpoint=view,
        tab="settings",
        title=view.name,
    )


@page("/console/endpoints/{endpoint_id}/delete", change=True)
async def delete_endpoint(pg: Page) -> Response:
    await pg.services.endpoints.delete(pg.param("endpoint_id"))
    return pg.redirect("/", "deleted")


# -- API keys and the signing secret --------------------------------------------------------


async def _keys_page(pg: Page, status: int = 200, **extra: object) -> Response:
    services = pg.services
    view = await services.endpoints.get(pg.param("endpoint_id"))
    keys = await services.endpoints.list_keys(view.id)
    grace = services.settings.signing_secret_grace_seconds
    return pg.render(
        "keys.html",
        status=status,
        endpoint=view,
        keys=keys,
        tab="keys",
        grace=grace,
        title=f"{view.name} · keys",
        **extra,
    )


@page("/console/endpoints/{endpoint_id}/keys")
async def keys(pg: Page) -> Response:
    return await _keys_page(pg)


@page("/console/endpoints/{endpoint_id}/keys", change=True)
async def create_key(pg: Page) -> Response:
    name = pg.form.get("name", "").strip() or None
    try:
        request = ApiKeyCreate(name=name)
    except ValidationError as exc:
        return await _keys_page(pg, 400, name_error=exc.errors()[0]["msg"], name_value=name)
    created = await pg.services.endpoints.create_key(pg.param("endpoint_id"), request)
    return await _keys_page(pg, 201, created=created)


@page("/console/endpoints/{endpoint_id}/keys/{key_id}/revoke", change=True)
async def revoke_key(pg: Page) -> Response:
    endpoint_id = pg.param("endpoint_id")
    await pg.services.endpoints.revoke_key(endpoint_id, pg.param("key_id"))
    return pg.redirect(f"/console/endpoints/{endpoint_id}/keys", "revoked")


@page("/console/endpoints/{endpoint_id}/signing/rotate", change=True)
async def rotate_signing(pg: Page) -> Response:
    rotated = await pg.services.endpoints.rotate_signing_secret(pg.param("endpoint_id"))
    return await _keys_page(pg, 200, rotated=rotated)


@page("/console/endpoints/{endpoint_id}/signing/off", change=True)
async def signing_off(pg: Page) -> Response:
    endpoint_id = pg.param("endpoint_id")
    await pg.services.endpoints.update(endpoint_id, EndpointUpdate(signing=False))
    return pg.redirect(f"/console/endpoints/{endpoint_id}/keys", "signing-off")
