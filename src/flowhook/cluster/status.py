"""The processes sharing the database and the partitions each holds (admin API and CLI)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from flowhook.cluster import leases
from flowhook.cluster.partitions import PARTITIONS
from flowhook.storage.store import SqlStore


class _Api(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class WorkerView(_Api):
    id: str
    role: str
    host: str
    pid: int
    started_at: datetime  # stored as Unix seconds; shown in ISO 8601 like every time
    heartbeat_at: datetime
    partitions: int  # leases held now


class ClusterView(_Api):
    backend: str
    partitions: int  # sessions are hashed onto this many
    unowned_partitions: int  # no live lease: their sessions wait for a worker to claim them
    workers: list[WorkerView]


async def cluster_view(store: SqlStore, lease_seconds: float) -> ClusterView:
    """What the database says now. On SQLite there is one process and nothing to list."""
    if store.backend != "postgresql":
        return ClusterView(
            backend=store.backend, partitions=PARTITIONS, unowned_partitions=0, workers=[]
        )
    rows = await store.transact(lambda c: leases.cluster_view(c, lease_seconds))
    workers = [WorkerView.model_validate(row) for row in rows]
    held = sum(w.partitions for w in workers)
    return ClusterView(
        backend=store.backend,
        partitions=PARTITIONS,
        unowned_partitions=PARTITIONS - held,
        workers=workers,
    )
