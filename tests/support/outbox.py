"""Outbox rows written straight into the tables (quick for many), each with its body in
``outbox_bodies`` as the turn's commit writes it."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from flowhook.storage import schema as t


def pending_output(delivery_id: str, body: bytes = b"{}") -> dict[str, Any]:
    """An output of endpoint ``ep-1``, session ``s1``, never attempted, for ``insert_outputs``."""
    return {
        "delivery_id": delivery_id,
        "endpoint_id": "ep-1",
        "session_id": "s1",
        "message_id": None,
        "body": body.decode(),
        "status": "pending",
        "attempts": 0,
        "not_before": 0.0,
        "created_at": time.time(),
        "partition": 0,
    }


def insert_outputs(conn: sa.Connection, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Insert outbox rows (each mapping has the row's columns and its ``body``); returns
    their ids in row order."""
    if not rows:
        return []
    columns = [{k: v for k, v in row.items() if k != "body"} for row in rows]
    query = sa.insert(t.outbox).returning(t.outbox.c.id, sort_by_parameter_order=True)
    ids = [int(i) for i in conn.execute(query, columns).scalars()]
    bodies = [{"outbox_id": i, "body": row["body"]} for i, row in zip(ids, rows, strict=True)]
    conn.execute(sa.insert(t.outbox_bodies), bodies)
    return ids


# Bodies for outputs inserted by a statement of a test (``INSERT INTO outbox ... SELECT``):
# every output without one gets ``:body``.
ADD_MISSING_BODIES = sa.text(
    "INSERT INTO outbox_bodies (outbox_id, body) SELECT o.id, :body FROM outbox AS o "
    "WHERE NOT EXISTS (SELECT 1 FROM outbox_bodies AS b WHERE b.outbox_id = o.id)"
)
