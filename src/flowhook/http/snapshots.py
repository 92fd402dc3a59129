"""The admin API's snapshot routes: export (GET) and import (POST) of flows and endpoint
settings. The web layer only: the work is ``flowhook.snapshots.SnapshotService``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Query, Request
from starlette.responses import Response

from flowhook.endpoints.security import EndpointSecurity
from flowhook.flows.registry import FlowRegistry
from flowhook.http.deps import request_body, services_of
from flowhook.http.errors import documented
from flowhook.http.routing import admin_router
from flowhook.services import Services
from flowhook.snapshots import ImportResult, OnConflict, SnapshotService, parse_snapshot
from flowhook.snapshots.format import Snapshot

router = admin_router("/api/v1", tags=["snapshots"])

_SNAPSHOT_BODY = {
    "requestBody": {
        "required": True,
        "description": "A snapshot file, as GET /api/v1/snapshot exports it.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Snapshot"}}},
    }
}

PassphraseHeader = Annotated[
    str | None,
    Header(
        alias="X-Snapshot-Passphrase",
        description="Passphrase that encrypts (export) or decrypts (import) the secrets.",
    ),
]


def _use_flows(services: Services, registry: FlowRegistry) -> None:
    """Let this running server run the flows an import wrote."""
    services.engine.use_registry(registry)


def snapshot_service(services: Services) -> SnapshotService:
    return SnapshotService(
        services.endpoints,
        services.store,
        EndpointSecurity.from_settings(services.settings),
        services.settings.flows_dir,
        on_flows_changed=lambda registry: _use_flows(services, registry),
        allow_code_modules=services.settings.code_allow_modules,
    )


@router.get(
    "/snapshot",
    response_class=Response,
    responses={
        200: {
            "description": "The snapshot file (JSON), as an attachment.",
            "model": Snapshot,
        }
    },
)
async def export_snapshot(
    request: Request,
    passphrase: PassphraseHeader = None,
    include_secrets: Annotated[
        bool,
        Query(
            alias="includeSecrets",
            description="Also export webhook passwords and signing secrets, encrypted with "
            "the X-Snapshot-Passphrase. API keys are never exported.",
        ),
    ] = False,
) -> Response:
    """Flows and endpoint settings of this installation as one snapshot file."""
    service = snapshot_service(services_of(request))
    snapshot = await service.export(include_secrets=include_secrets, passphrase=passphrase)
    stamp = snapshot.created_at.strftime("%Y%m%dT%H%M%SZ")
    return Response(
        snapshot.to_json_bytes(),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="flowhook-snapshot-{stamp}.json"',
            "Cache-Control": "no-store",
        },
    )


@router.post(
    "/snapshot",
    response_model=ImportResult,
    responses=documented(409),
    openapi_extra=_SNAPSHOT_BODY,
)
async def import_snapshot(
    request: Request,
    passphrase: PassphraseHeader = None,
    on_conflict: Annotated[
        OnConflict,
        Query(
            alias="onConflict",
            description="An endpoint (same name) or flow file that exists already: fail "
            "(import nothing), skip it, or replace it.",
        ),
    ] = "fail",
) -> ImportResult:
    """Import a snapshot (the body). Everything is checked first: any problem imports
    nothing and the 400 answer lists every problem."""
    services = services_of(request)
    snapshot = parse_snapshot(await request_body(request))
    return await snapshot_service(services).import_(
        snapshot, passphrase=passphrase, on_conflict=on_conflict
    )
