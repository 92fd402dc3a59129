"""Writes that change what the ingress and delivery must obey: endpoints and their keys.

Every such write bumps the configuration generation (``meta.config_generation``) in its
own transaction, whoever makes it (admin API, CLI, snapshot import, another process).
Every process reads the generation before each request and each delivery attempt
(``flowhook.endpoints.generation``), so a change holds from the very next one.

Deleting an endpoint is refused while it has accepted messages or outputs pending,
unless forced: then each of them is failed, with the reason recorded, in the same
transaction as the delete. The check and the delete are one transaction, so nothing
accepted slips between them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Text, cast, delete, func, literal, select, update

from flowhook.cluster.partitions import HANDOVER_PREFIX
from flowhook.storage import schema as t

GENERATION = "config_generation"
DELETED_REASON = "the endpoint was deleted (with force) before this was done"


@dataclass(frozen=True, slots=True)
class PendingWork:
    """What an endpoint still owes: messages not yet through their turn, outputs not yet
    delivered (its handover events included)."""

    messages: int
    outputs: int

    @property
    def none(self) -> bool:
        return self.messages == 0 and self.outputs == 0


@dataclass(frozen=True, slots=True)
class DeleteRequest:
    endpoint_id: str
    force: bool


@dataclass(frozen=True, slots=True)
class DeleteResult:
    """``deleted`` False with ``pending`` set: refused (not forced); with ``pending``
    empty: no such endpoint. ``pending``: what was failed (forced) or refused for."""

    deleted: bool
    pending: PendingWork


def bump_generation(conn: Connection) -> None:
    conn.execute(
        update(t.meta).where(t.meta.c.name == GENERATION).values(number=t.meta.c.number + 1)
    )


_READ_GENERATION = f"SELECT number FROM meta WHERE name = '{GENERATION}'"  # noqa: S608 - a constant


def read_generation(conn: Connection) -> int:
    # The plain DBAPI cursor: this read runs before delivery attempts (up to one per
    # attempt at moderate load), and SQLAlchemy's statement handling cost more than
    # the read itself (docs/performance.md, "Delivery path CPU").
    cursor = conn.connection.cursor()
    try:
        cursor.execute(_READ_GENERATION)
        row = cursor.fetchone()
    finally:
        cursor.close()
    return int(row[0] or 0) if row else 0


def endpoint_ids(conn: Connection) -> set[str]:
    return {str(i) for i in conn.execute(select(t.endpoints.c.id)).scalars()}


def pending_work(conn: Connection, endpoint_id: str) -> PendingWork:
    messages = conn.execute(
        select(func.count())
        .select_from(t.messages)
        .where(t.messages.c.endpoint_id == endpoint_id, t.messages.c.status == "pending")
    ).scalar_one()
    outputs = conn.execute(
        select(func.count())
        .select_from(t.outbox)
        .where(
            t.outbox.c.endpoint_id.in_((endpoint_id, HANDOVER_PREFIX + endpoint_id)),
            t.outbox.c.status == "pending",
        )
    ).scalar_one()
    return PendingWork(int(messages), int(outputs))


def delete_endpoints(conn: Connection, requests: Sequence[DeleteRequest]) -> list[DeleteResult]:
    out = []
    for req in requests:
        exists = conn.execute(
            select(t.endpoints.c.id).where(t.endpoints.c.id == req.endpoint_id)
        ).first()
        if exists is None:
            out.append(DeleteResult(False, PendingWork(0, 0)))
            continue
        pending = pending_work(conn, req.endpoint_id)
        if not pending.none and not req.force:
            out.append(DeleteResult(False, pending))
            continue
        if not pending.none:
            _fail_pending(conn, req.endpoint_id)
        conn.execute(delete(t.api_keys).where(t.api_keys.c.endpoint_id == req.endpoint_id))
        conn.execute(delete(t.endpoints).where(t.endpoints.c.id == req.endpoint_id))
        bump_generation(conn)
        out.append(DeleteResult(True, pending))
    return out


def _fail_pending(conn: Connection, endpoint_id: str) -> None:
    now = time.time()
    m = t.messages.c
    conn.execute(
        update(t.messages)
        .where(m.endpoint_id == endpoint_id, m.status == "pending")
        .values(
            status="failed",
            processed_at=now,
            text=None,  # as for a finished turn (flowhook.storage.hotpath)
            data=None,
            # The same shape as a failed turn's reason: message id, trace id, what happened.
            error=literal("message ")
            + cast(m.id, Text)
            + literal(" (traceId ")
            + m.trace_id
            + literal("): " + DELETED_REASON),
        )
    )
    o = t.outbox.c
    conn.execute(
        update(t.outbox)
        .where(
            o.endpoint_id.in_((endpoint_id, HANDOVER_PREFIX + endpoint_id)), o.status == "pending"
        )
        .values(status="failed", finished_at=now, last_error=DELETED_REASON)
    )
