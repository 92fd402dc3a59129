"""Storage for the delivery admin side: dead letters, replay, the endpoint delivery switch,
the outbox sweep and the numbers behind the metrics.

``DeliveryStore`` works over a ``SqlStore``'s engine (reads, on a worker thread) and its
group-commit writer (writes), with the same statements on SQLite and PostgreSQL. Nothing
here is on the message hot path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    func,
    select,
    text,
    update,
)
from sqlalchemy.exc import SQLAlchemyError

from flowhook.delivery.types import PendingDelivery
from flowhook.errors import StorageError
from flowhook.storage import schema as t
from flowhook.storage.due import DueIds, read_due, some_pending
from flowhook.storage.records import AttemptRecord, DeliveryRecord, ReplayResult
from flowhook.storage.store import (
    OUTBOX_BODY,
    PENDING_COLUMNS,
    SqlStore,
    pending_delivery,
)

R = TypeVar("R")

# Rows fetched by id per statement (well below every backend's bind-parameter limit).
CHUNK = 500

_SUMMARY_COLUMNS = (
    t.outbox.c.id,
    t.outbox.c.delivery_id,
    t.outbox.c.endpoint_id,
    t.outbox.c.session_id,
    t.outbox.c.message_id,
    t.outbox.c.status,
    t.outbox.c.attempts,
    t.outbox.c.not_before,
    t.outbox.c.last_status,
    t.outbox.c.last_error,
    t.outbox.c.created_at,
    t.outbox.c.finished_at,
    t.outbox.c.replayed_at,
)


@dataclass(frozen=True, slots=True)
class DeliveryFilter:
    """Which deliveries of an endpoint to list; times are unix seconds of creation."""

    endpoint_id: str
    session_id: str | None = None
    status: str | None = None
    since: float | None = None
    until: float | None = None
    before_id: int | None = None  # the cursor: only rows with a smaller outbox id
    limit: int = 50


@dataclass(frozen=True, slots=True)
class ReplaySpec:
    """What to reset to pending: one delivery, or an endpoint's failed ones in a time range."""

    endpoint_id: str
    delivery_id: str | None = None
    since: float | None = None
    until: float | None = None


@dataclass(frozen=True, slots=True)
class PendingStats:
    """Outputs owed to one endpoint: how many, and since when the oldest waits."""

    endpoint_id: str
    count: int
    oldest: float  # unix time the oldest pending output was created (or replayed)


class DeliveryStore:
    def __init__(self, store: SqlStore) -> None:
        self._engine = store.read_engine  # reads only: writes go through the writer
        self._writer = store.writer
        self._running: set[asyncio.Future[Any]] = set()

    async def _read(self, fn: Callable[[Connection], R]) -> R:
        def run() -> R:
            try:
                with self._engine.connect() as conn:
                    return fn(conn)
            except SQLAlchemyError as exc:
                raise StorageError(f"storage read failed: {type(exc).__name__}") from exc

        fut = asyncio.get_running_loop().run_in_executor(None, run)
        self._running.add(fut)
        fut.add_done_callback(self._running.discard)
        return await fut

    async def drain(self) -> None:
        """Wait for reads still running on their threads (their callers may have been
        cancelled): the engine must not be disposed under them."""
        if self._running:
            await asyncio.wait(list(self._running))

    # -- dead letters and the attempt log -----------------------------------------------------

    async def list_for_endpoint(self, flt: DeliveryFilter) -> list[DeliveryRecord]:
        """Deliveries of an endpoint, newest first, at most ``flt.limit``."""
        o = t.outbox.c
        query = select(*_SUMMARY_COLUMNS).where(o.endpoint_id == flt.endpoint_id)
        if flt.session_id is not None:
            query = query.where(o.session_id == flt.session_id)
        if flt.status is not None:
            query = query.where(o.status == flt.status)
        if flt.since is not None:
            query = query.where(o.created_at >= flt.since)
        if flt.until is not None:
            query = query.where(o.created_at < flt.until)
        if flt.before_id is not None:
            query = query.where(o.id < flt.before_id)
        query = query.order_by(o.id.desc()).limit(flt.limit)
        return await self._read(lambda c: [_delivery(r) for r in c.execute(query).all()])

    async def get(self, delivery_id: str) -> DeliveryRecord | None:
        """One delivery by its id (the webhook-id), with its body."""
        query = select(*_SUMMARY_COLUMNS, OUTBOX_BODY).where(t.outbox.c.delivery_id == delivery_id)

        def run(c: Connection) -> DeliveryRecord | None:
            row = c.execute(query).first()
            return None if row is None else _delivery(row, with_body=True)

        return await self._read(run)

    async def attempts(self, outbox_id: int) -> list[AttemptRecord]:
        a = t.attempts.c
        query = (
            select(a.id, a.at, a.status, a.duration_ms, a.error, a.body_excerpt)
            .where(a.outbox_id == outbox_id)
            .order_by(a.id)
        )
        return await self._read(
            lambda c: [AttemptRecord(**r._mapping) for r in c.execute(query).all()]
        )

    async def replay(self, spec: ReplaySpec, now: float) -> ReplayResult:
        """Reset to pending (attempts counted from 0, the attempt log kept) and switch the
        endpoint's delivery back on; one transaction."""
        result: ReplayResult = await self._writer.write(_replay, (spec, now))
        return result

    # -- the endpoint delivery switch ---------------------------------------------------------

    async def set_delivery_disabled(self, endpoint_id: str, reason: str | None, at: float) -> bool:
        """Switch an endpoint's delivery off (with a reason) or on (``None``).

        Returns False when the endpoint does not exist."""
        changed: bool = await self._writer.write(_set_disabled, (endpoint_id, reason, at))
        return changed

    async def disabled_endpoints(self) -> dict[str, str]:
        e = t.endpoints.c
        query = select(e.id, e.delivery_disabled_reason).where(
            e.delivery_disabled_reason.is_not(None)
        )
        return await self._read(
            lambda c: {r.id: r.delivery_disabled_reason for r in c.execute(query)}
        )

    # -- the outbox sweep ---------------------------------------------------------------------

    async def pending_ids(self, limit: int, partitions: Sequence[int] | None = None) -> list[int]:
        """Ids of the oldest pending outputs of endpoints whose delivery is on; with
        ``partitions``, only of sessions in these partitions."""
        o = t.outbox.c
        query = select(o.id).where(o.status == "pending", _delivery_on(o.endpoint_id))
        if partitions is not None:
            query = query.where(o.partition.in_(partitions))
        query = query.order_by(o.id).limit(limit)
        return await self._read(lambda c: list(c.execute(query).scalars()))

    async def pending_in_partitions(
        self, partitions: Sequence[int], after_id: int = 0, limit: int = 5000
    ) -> list[PendingDelivery]:
        """Pending outputs of sessions in these partitions, in id order (of endpoints whose
        delivery is on: the others are taken when it is switched on again)."""
        o = t.outbox.c
        query = (
            select(*PENDING_COLUMNS)
            .where(
                o.partition.in_(partitions),
                o.status == "pending",
                o.id > after_id,
                _delivery_on(o.endpoint_id),
            )
            .order_by(o.id)
            .limit(limit)
        )
        return await self._read(lambda c: [pending_delivery(r) for r in c.execute(query).all()])

    async def pending_by_ids(self, ids: Sequence[int]) -> list[PendingDelivery]:
        """Those of ``ids`` still pending, in id order.

        Looked up by primary key, the status checked here: with ``status = 'pending'`` in
        the query, PostgreSQL (before the table has statistics) serves ``id IN (...)``
        from a partial index of pending outputs whose leading key is not ``id``, reading
        every pending entry per statement (docs/performance.md, "PostgreSQL delivery
        reads")."""
        o = t.outbox.c

        def run(c: Connection) -> list[PendingDelivery]:
            out: list[PendingDelivery] = []
            for start in range(0, len(ids), CHUNK):
                chunk = list(ids[start : start + CHUNK])
                rows = c.execute(select(*PENDING_COLUMNS).where(o.id.in_(chunk))).all()
                out.extend(pending_delivery(r) for r in rows if r.status == "pending")
            out.sort(key=lambda p: p.outbox_id)
            return out

        return await self._read(run)

    async def pending_of_endpoint(
        self, endpoint_id: str, after_id: int = 0, limit: int = 5000
    ) -> list[PendingDelivery]:
        o = t.outbox.c
        query = (
            select(*PENDING_COLUMNS)
            .where(o.endpoint_id == endpoint_id, o.status == "pending", o.id > after_id)
            .order_by(o.id)
            .limit(limit)
        )
        return await self._read(lambda c: [pending_delivery(r) for r in c.execute(query).all()])

    async def endpoints_pending(self) -> dict[str, float]:
        """Every endpoint with pending outputs, and the earliest due time among them.

        A loose index scan: one index seek per endpoint, whatever the number of pending
        outputs, so a large backlog of one endpoint costs the others nothing here."""
        query = _ENDPOINTS[self._engine.dialect.name]
        return await self._read(lambda c: {str(r[0]): float(r[1]) for r in c.execute(query)})

    async def due_ids(
        self,
        endpoint_id: str,
        now: float,
        limit: int,
        partitions: Sequence[int] | None = None,
    ) -> list[int]:
        """Ids of the endpoint's pending outputs that may be attempted now: per session its
        head when due, and the due outputs right behind it (``flowhook.storage.due``)."""
        due = await self.due(endpoint_id, now, limit, partitions)
        return due.all()

    async def due(
        self,
        endpoint_id: str,
        now: float,
        limit: int,
        partitions: Sequence[int] | None = None,
        after: str | None = None,
    ) -> DueIds:
        """``due_ids``, with the due heads apart from the outputs behind them; ``after``:
        resume the walk of sessions after that one (``DueIds.resume_after``)."""
        return await self._read(lambda c: read_due(c, endpoint_id, now, limit, partitions, after))

    async def pending_body(self, outbox_id: int) -> bytes | None:
        """The body of a pending output, as stored (the exact bytes sent); ``None`` when it
        is no longer pending."""
        o = t.outbox.c
        # By primary key, the status checked here (as in ``pending_by_ids``).
        query = select(OUTBOX_BODY, o.status).where(o.id == outbox_id)
        row = await self._read(lambda c: c.execute(query).first())
        return None if row is None or row.status != "pending" else str(row.body).encode()

    async def some_pending_ids(
        self, endpoint_id: str, limit: int, partitions: Sequence[int] | None = None
    ) -> list[int]:
        """Up to ``limit`` ids of the endpoint's pending outputs, in no particular order
        (fewer than ``limit``: all of them)."""
        return await self._read(lambda c: some_pending(c, endpoint_id, limit, partitions))

    # -- metrics ------------------------------------------------------------------------------

    async def pending_stats(self) -> list[PendingStats]:
        """Per endpoint: pending outputs and when the oldest started waiting."""
        o = t.outbox.c
        query = (
            select(
                o.endpoint_id,
                func.count(),
                func.min(func.coalesce(o.replayed_at, o.created_at)),
            )
            .where(o.status == "pending")
            .group_by(o.endpoint_id)
        )
        return await self._read(
            lambda c: [
                PendingStats(str(r[0]), int(r[1]), float(r[2])) for r in c.execute(query).all()
            ]
        )


# Each step finds the next endpoint with pending outputs (an index seek past the previous
# one) and its earliest due time. SQLite is told the index: with an equality on status it
# would otherwise pick ix_outbox_pending (status, id) and scan every pending row per step.
_ENDPOINTS_SQL = """
    WITH RECURSIVE eps(e) AS (
        SELECT (SELECT MIN(endpoint_id) FROM outbox {hint} WHERE status = 'pending')
        UNION ALL
        SELECT (
            SELECT MIN(o.endpoint_id) FROM outbox o {hint}
            WHERE o.status = 'pending' AND o.endpoint_id > eps.e
        )
        FROM eps WHERE eps.e IS NOT NULL
    )
    SELECT e, (
        SELECT MIN(o.not_before) FROM outbox o {hint}
        WHERE o.status = 'pending' AND o.endpoint_id = eps.e
    )
    FROM eps WHERE e IS NOT NULL
"""
_ENDPOINTS = {
    "sqlite": text(_ENDPOINTS_SQL.format(hint="INDEXED BY ix_outbox_pending_due")),
    "postgresql": text(_ENDPOINTS_SQL.format(hint="")),
}


# -- batch write functions (run on the writer thread) -----------------------------------------


def _delivery_on(endpoint_id: Any) -> Any:
    """Outbox rows whose endpoint's delivery is not switched off."""
    disabled = select(t.endpoints.c.id).where(t.endpoints.c.delivery_disabled_reason.is_not(None))
    return endpoint_id.not_in(disabled.scalar_subquery())


def _replay(conn: Connection, args: Sequence[tuple[ReplaySpec, float]]) -> list[ReplayResult]:
    out = []
    o = t.outbox.c
    e = t.endpoints.c
    for spec, now in args:
        query = update(t.outbox).where(o.endpoint_id == spec.endpoint_id)
        if spec.delivery_id is not None:
            # One delivery: failed or delivered (a receiver that lost it may ask again).
            query = query.where(o.delivery_id == spec.delivery_id, o.status != "pending")
        else:
            query = query.where(o.status == "failed")
            if spec.since is not None:
                query = query.where(o.created_at >= spec.since)
            if spec.until is not None:
                query = query.where(o.created_at < spec.until)
        ids = conn.execute(
            query.values(
                status="pending", attempts=0, not_before=0.0, finished_at=None, replayed_at=now
            ).returning(o.id)
        ).scalars()
        reenabled = conn.execute(
            update(t.endpoints)
            .where(e.id == spec.endpoint_id, e.delivery_disabled_reason.is_not(None))
            .values(delivery_disabled_reason=None, delivery_disabled_at=None)
        ).rowcount
        out.append(
            ReplayResult(
                endpoint_ids=(spec.endpoint_id,),
                outbox_ids=tuple(sorted(ids)),
                reenabled=(spec.endpoint_id,) if reenabled else (),
            )
        )
    return out


def _set_disabled(conn: Connection, args: Sequence[tuple[str, str | None, float]]) -> list[bool]:
    out = []
    for endpoint_id, reason, at in args:
        res = conn.execute(
            update(t.endpoints)
            .where(t.endpoints.c.id == endpoint_id)
            .values(
                delivery_disabled_reason=reason,
                delivery_disabled_at=None if reason is None else at,
            )
        )
        out.append(res.rowcount > 0)
    return out


# -- row mapping ------------------------------------------------------------------------------


def _delivery(row: Any, *, with_body: bool = False) -> DeliveryRecord:
    return DeliveryRecord(
        outbox_id=row.id,
        delivery_id=row.delivery_id,
        endpoint_id=row.endpoint_id,
        session_id=row.session_id,
        message_id=row.message_id,
        status=row.status,
        attempts=row.attempts,
        not_before=row.not_before,
        last_status=row.last_status,
        last_error=row.last_error,
        created_at=row.created_at,
        finished_at=row.finished_at,
        replayed_at=row.replayed_at,
        body=row.body.encode() if with_body and row.body is not None else None,
    )
