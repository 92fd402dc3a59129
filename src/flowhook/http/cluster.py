"""GET /api/v1/cluster: the processes sharing the database (admin token)."""

from __future__ import annotations

from fastapi import Request

from flowhook.cluster.status import ClusterView, cluster_view
from flowhook.http.deps import services_of
from flowhook.http.routing import admin_router

router = admin_router("/api/v1", tags=["admin"])


@router.get("/cluster", response_model=ClusterView, response_model_by_alias=True)
async def show_cluster(request: Request) -> ClusterView:
    """Every live process (by heartbeat) with its role and the partitions it holds."""
    services = services_of(request)
    return await cluster_view(services.store, services.settings.lease_seconds)
