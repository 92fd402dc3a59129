"""Reads the console needs beyond the admin API's: delivery health per endpoint, an
endpoint's sessions, a session's deliveries with payloads, per-day counts.

Read-only, through the store's reader like ``flowhook.storage.insights``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, Integer, cast, func, or_, select

from flowhook.storage import schema as t
from flowhook.storage.store import OUTBOX_BODY, SqlStore

DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class DeliveryHealth:
    """An endpoint's delivery over the last day, and what waits now."""

    delivered: int = 0
    failed: int = 0
    pending: int = 0
    oldest_pending_at: float | None = None

    @property
    def success_rate(self) -> float | None:
        finished = self.delivered + self.failed
        return None if not finished else self.delivered / finished


@dataclass(frozen=True, slots=True)
class SessionSummary:
    session_id: str
    user_id: str
    turns: int
    created_at: float
    updated_at: float
    handover: dict[str, Any] | None


class ConsoleQueries:
    def __init__(self, store: SqlStore) -> None:
        self._store = store

    async def delivery_health(self, now: float | None = None) -> dict[str, DeliveryHealth]:
        """Per endpoint id: outcomes of the deliveries created in the last 24 hours, and
        the queue (every pending delivery, however old)."""
        since = (time.time() if now is None else now) - DAY
        o = t.outbox

        def run(c: Connection) -> dict[str, DeliveryHealth]:
            finished = c.execute(
                select(o.c.endpoint_id, o.c.status, func.count())
                .where(o.c.created_at >= since, o.c.status != "pending")
                .group_by(o.c.endpoint_id, o.c.status)
            ).all()
            queued = c.execute(
                select(o.c.endpoint_id, func.count(), func.min(o.c.created_at))
                .where(o.c.status == "pending")
                .group_by(o.c.endpoint_id)
            ).all()
            out: dict[str, dict[str, Any]] = {}
            for endpoint_id, status, n in finished:
                out.setdefault(endpoint_id, {})[status] = int(n)
            for endpoint_id, n, oldest in queued:
                entry = out.setdefault(endpoint_id, {})
                entry["pending"] = int(n)
                entry["oldest_pending_at"] = oldest
            return {
                eid: DeliveryHealth(
                    delivered=v.get("delivered", 0),
                    failed=v.get("failed", 0),
                    pending=v.get("pending", 0),
                    oldest_pending_at=v.get("oldest_pending_at"),
                )
                for eid, v in out.items()
            }

        return await self._store._read(run)

    async def sessions(
        self, endpoint_id: str, *, search: str = "", limit: int = 100
    ) -> list[SessionSummary]:
        """An endpoint's sessions, most recently active first; ``search`` matches the
        start of the session id or the user id."""
        s = t.sessions

        def run(c: Connection) -> list[SessionSummary]:
            query = select(s).where(s.c.endpoint_id == endpoint_id)
            if search:
                pattern = _prefix_pattern(search)
                query = query.where(
                    or_(
                        s.c.session_id.like(pattern, escape="\\"),
                        s.c.user_id.like(pattern, escape="\\"),
                    )
                )
            rows = c.execute(query.order_by(s.c.updated_at.desc()).limit(limit)).all()
            return [
                SessionSummary(
                    session_id=r.session_id,
                    user_id=r.user_id,
                    turns=int(r.turns),
                    created_at=r.created_at,
                    updated_at=r.updated_at,
                    handover=_handover_of(r.state),
                )
                for r in rows
            ]

        return await self._store._read(run)

    async def session(self, endpoint_id: str, session_id: str) -> SessionSummary | None:
        s = t.sessions

        def run(c: Connection) -> SessionSummary | None:
            r = c.execute(
                select(s).where(s.c.endpoint_id == endpoint_id, s.c.session_id == session_id)
            ).first()
            if r is None:
                return None
            return SessionSummary(
                r.session_id,
                r.user_id,
                int(r.turns),
                r.created_at,
                r.updated_at,
                _handover_of(r.state),
            )

        return await self._store._read(run)

    async def session_deliveries(
        self, endpoint_id: str, session_id: str, limit: int = 50
    ) -> list[dict[str, Any]]:
        """A session's latest outputs to the webhook (oldest first): the exact payload,
        its state and the last answer."""
        o = t.outbox

        def run(c: Connection) -> list[dict[str, Any]]:
            rows = c.execute(
                select(o, OUTBOX_BODY)
                .where(o.c.endpoint_id == endpoint_id, o.c.session_id == session_id)
                .order_by(o.c.id.desc())
                .limit(limit)
            ).all()
            return [
                {
                    "id": r.delivery_id,
                    "status": r.status,
                    "attempts": r.attempts,
                    "lastStatusCode": r.last_status,
                    "lastError": r.last_error,
                    "createdAt": r.created_at,
                    "finishedAt": r.finished_at,
                    "payload": _json_or_text(r.body),
                }
                for r in reversed(rows)
            ]

        return await self._store._read(run)

    async def per_day(self, endpoint_id: str, since: float, until: float) -> list[dict[str, Any]]:
        """Turns (messages handled) and outputs per UTC day in [since, until).

        From the turn statistics, which are kept for the analytics retention (90 days by
        default), not from the inbox, which is pruned after the history retention.
        """
        st = t.turn_stats
        postgres = self._store.backend == "postgresql"
        # SQLite truncates a positive REAL cast to INTEGER; PostgreSQL would round.
        day = cast(func.floor(st.c.at / DAY), Integer) if postgres else cast(st.c.at / DAY, Integer)

        def run(c: Connection) -> list[dict[str, Any]]:
            rows = c.execute(
                select(day, func.count(), func.coalesce(func.sum(st.c.outputs), 0))
                .where(st.c.endpoint_id == endpoint_id, st.c.at >= since, st.c.at < until)
                .group_by(day)
            ).all()
            counts = {int(d): (int(n), int(out)) for d, n, out in rows}
            first, last = int(since // DAY), int((until - 1e-6) // DAY)
            return [
                {"day": d * DAY, "in": counts.get(d, (0, 0))[0], "out": counts.get(d, (0, 0))[1]}
                for d in range(first, last + 1)
            ]

        return await self._store._read(run)


def _prefix_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def _handover_of(raw_state: str | None) -> dict[str, Any] | None:
    if not raw_state:
        return None
    try:
        state = orjson.loads(raw_state)
    except orjson.JSONDecodeError:
        return None
    handover = state.get("handover") if isinstance(state, dict) else None
    return dict(handover) if isinstance(handover, dict) else None


def _json_or_text(body: Any) -> Any:
    if body is None:
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
