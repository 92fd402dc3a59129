"""Reading transcripts and analytics, and deleting transcripts past their retention."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, Integer, delete, func, select, text

from flowhook.storage import schema as t
from flowhook.storage.store import SqlStore


class Insights:
    def __init__(self, store: SqlStore) -> None:
        self._store = store

    async def transcript(
        self, endpoint_id: str, session_id: str, *, after_id: int = 0, limit: int = 500
    ) -> list[dict[str, Any]]:
        def run(c: Connection) -> list[dict[str, Any]]:
            rows = c.execute(
                select(t.transcripts)
                .where(
                    t.transcripts.c.endpoint_id == endpoint_id,
                    t.transcripts.c.session_id == session_id,
                    t.transcripts.c.id > after_id,
                )
                .order_by(t.transcripts.c.id)
                .limit(limit)
            ).all()
            return [
                {
                    "id": r.id,
                    "at": r.at,
                    "direction": r.direction,
                    "source": r.source,
                    "userId": r.user_id,
                    "text": r.text,
                    "data": None if r.data is None else orjson.loads(r.data),
                    "traceId": r.trace_id,
                    "clientIp": r.client_ip,
                }
                for r in rows
            ]

        return await self._store._read(run)

    async def analytics(self, endpoint_id: str, since: float, until: float) -> dict[str, Any]:
        def run(c: Connection) -> dict[str, Any]:
            m, s, o = t.messages, t.turn_stats, t.outbox
            in_range = (
                m.c.endpoint_id == endpoint_id,
                m.c.received_at >= since,
                m.c.received_at < until,
            )
            messages_in = c.execute(
                select(func.count()).where(*in_range, m.c.kind == "message")
            ).scalar_one()
            sessions = c.execute(
                select(func.count(func.distinct(m.c.session_id))).where(*in_range)
            ).scalar_one()
            stats_range = (s.c.endpoint_id == endpoint_id, s.c.at >= since, s.c.at < until)
            turns, outputs, handovers = c.execute(
                select(
                    func.count(),
                    func.coalesce(func.sum(s.c.outputs), 0),
                    func.coalesce(func.sum(func.cast(s.c.handover, Integer)), 0),
                ).where(*stats_range)
            ).one()
            intents = c.execute(
                select(s.c.intent, func.count())
                .where(*stats_range, s.c.intent.is_not(None))
                .group_by(s.c.intent)
                .order_by(func.count().desc(), s.c.intent)
            ).all()
            outcomes: dict[str, int] = dict(
                c.execute(
                    select(o.c.status, func.count())
                    .where(
                        o.c.endpoint_id == endpoint_id,
                        o.c.created_at >= since,
                        o.c.created_at < until,
                    )
                    .group_by(o.c.status)
                ).all()
            )
            finished = outcomes.get("delivered", 0) + outcomes.get("failed", 0)
            return {
                "since": since,
                "until": until,
                "messagesIn": messages_in,
                "messagesOut": int(outputs),
                "turns": turns,
                "sessions": sessions,
                "intents": [{"intent": name, "count": n} for name, n in intents],
                "handovers": int(handovers),
                "deliveries": {
                    "delivered": outcomes.get("delivered", 0),
                    "failed": outcomes.get("failed", 0),
                    "pending": outcomes.get("pending", 0),
                    "successRate": None
                    if not finished
                    else outcomes.get("delivered", 0) / finished,
                },
                "turnLatencyMs": {
                    "p50": _percentile(c, stats_range, turns, 0.50),
                    "p95": _percentile(c, stats_range, turns, 0.95),
                },
            }

        return await self._store._read(run)

    async def purge_transcripts(self, retention: dict[str, float], now: float | None = None) -> int:
        """Delete each endpoint's transcript entries older than its retention (seconds)."""
        cutoff_now = time.time() if now is None else now
        if not retention:
            return 0
        result: int = await self._store._write(
            _purge, [(eid, cutoff_now - seconds) for eid, seconds in retention.items()]
        )
        return result


def _percentile(c: Connection, where: Sequence[Any], count: int, q: float) -> float | None:
    # Portable (SQLite has no percentile function): the value at the rank, by offset.
    if not count:
        return None
    value = c.execute(
        select(t.turn_stats.c.turn_ms)
        .where(*where)
        .order_by(t.turn_stats.c.turn_ms)
        .offset(int(q * (count - 1)))
        .limit(1)
    ).scalar_one()
    return round(float(value), 2)


# SQLite is told to find old entries by time: with the endpoint's equality it chose the
# (endpoint, session, id) index and read every entry of the endpoint for its time, the last
# column of the row, after the text: every overflow page of every transcript the endpoint
# keeps, on the writer, each purge (a 0.1-1 s stall of every commit each 600 s in
# ``bench failing``; docs/performance.md, "Where a healthy output waits"). PostgreSQL keeps
# large texts out of the row and plans by its statistics.
_PURGE_SQLITE = text(
    "DELETE FROM transcripts WHERE id IN (SELECT id FROM transcripts "
    "INDEXED BY ix_transcripts_at WHERE at < :cutoff AND endpoint_id = :endpoint_id)"
)


def _purge(conn: Connection, batches: Sequence[list[tuple[str, float]]]) -> list[int]:
    out = []
    sqlite = conn.dialect.name == "sqlite"
    for cutoffs in batches:
        deleted = 0
        for endpoint_id, cutoff in cutoffs:
            if sqlite:
                res = conn.execute(_PURGE_SQLITE, {"cutoff": cutoff, "endpoint_id": endpoint_id})
            else:
                res = conn.execute(
                    delete(t.transcripts).where(
                        t.transcripts.c.endpoint_id == endpoint_id, t.transcripts.c.at < cutoff
                    )
                )
            deleted += res.rowcount
        out.append(deleted)
    return out
