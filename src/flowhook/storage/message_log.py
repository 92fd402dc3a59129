"""Reads of the inbox for operators: one message's state and reason, a page of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, select

from flowhook.storage import schema as t
from flowhook.storage.store import SqlStore


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """An accepted message's life: pending, then done or failed (with why)."""

    id: int
    endpoint_id: str
    session_id: str
    user_id: str
    trace_id: str
    kind: str
    status: str
    received_at: float
    processed_at: float | None
    attempts: int
    error: str | None


_COLUMNS = (
    t.messages.c.id,
    t.messages.c.endpoint_id,
    t.messages.c.session_id,
    t.messages.c.user_id,
    t.messages.c.trace_id,
    t.messages.c.kind,
    t.messages.c.status,
    t.messages.c.received_at,
    t.messages.c.processed_at,
    t.messages.c.attempts,
    t.messages.c.error,
)


class MessageLog:
    def __init__(self, store: SqlStore) -> None:
        self._store = store

    async def get(self, message_id: int) -> MessageRecord | None:
        def run(c: Connection) -> MessageRecord | None:
            row = c.execute(select(*_COLUMNS).where(t.messages.c.id == message_id)).first()
            return None if row is None else _record(row)

        return await self._store.transact(run)

    async def page(
        self,
        endpoint_id: str,
        *,
        status: str | None,
        session_id: str | None,
        before_id: int | None,
        limit: int,
    ) -> list[MessageRecord]:
        """Newest first; ``before_id`` continues a previous page."""
        m = t.messages.c
        query = select(*_COLUMNS).where(m.endpoint_id == endpoint_id)
        if status is not None:
            query = query.where(m.status == status)
        if session_id is not None:
            query = query.where(m.session_id == session_id)
        if before_id is not None:
            query = query.where(m.id < before_id)
        query = query.order_by(m.id.desc()).limit(limit)

        def run(c: Connection) -> list[MessageRecord]:
            return [_record(r) for r in c.execute(query).all()]

        return await self._store.transact(run)


def _record(row: Row[Any] | Any) -> MessageRecord:
    return MessageRecord(**row._mapping)
