"""Dead letters and replay: the one service both the admin API and the CLI call.

It reads and writes storage only. Handing replayed outputs to a running dispatcher is
the ``on_replayed`` hook's job (set by the server); without it (the CLI, another
process), the server's outbox sweep picks them up within a few seconds.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import orjson
import structlog

from flowhook.delivery.models import (
    AttemptView,
    DeliveryDetail,
    DeliveryPage,
    DeliveryStatus,
    DeliveryView,
    ReplayFailedAnswer,
)
from flowhook.errors import Conflict, InvalidRequest, NotFound, Unprocessable
from flowhook.storage.deliveries import DeliveryFilter, DeliveryStore, ReplaySpec
from flowhook.storage.records import DeliveryRecord, ReplayResult
from flowhook.storage.store import SqlStore

log = structlog.get_logger(__name__)

MAX_PAGE = 500
ReplayHook = Callable[[ReplayResult], Awaitable[None]]


class DeliveryService:
    def __init__(self, store: SqlStore, *, on_replayed: ReplayHook | None = None) -> None:
        self._store = store
        self._deliveries = DeliveryStore(store)
        self._on_replayed = on_replayed

    async def list(
        self,
        endpoint_id: str,
        *,
        session_id: str | None = None,
        status: DeliveryStatus | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> DeliveryPage:
        """An endpoint's deliveries, newest first, one page at a time."""
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidRequest(
                f"limit must be between 1 and {MAX_PAGE}", field="limit", expected="1..500"
            )
        before = _cursor(cursor)
        start, end = _range(since, until)
        await self._endpoint_exists(endpoint_id)
        rows = await self._deliveries.list_for_endpoint(
            DeliveryFilter(
                endpoint_id=endpoint_id,
                session_id=session_id,
                status=status,
                since=start,
                until=end,
                before_id=before,
                limit=limit + 1,
            )
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return DeliveryPage(
            items=[view(r) for r in rows],
            next_cursor=str(rows[-1].outbox_id) if more else None,
        )

    async def show(self, delivery_id: str) -> DeliveryDetail:
        """One delivery with its payload and every attempt."""
        rec = await self._get(delivery_id)
        attempts = await self._deliveries.attempts(rec.outbox_id)
        return DeliveryDetail(
            **view(rec).model_dump(),
            payload=None if rec.body is None else orjson.loads(rec.body),
            attempts=[
                AttemptView(
                    at=_dt(a.at),
                    status_code=a.status,
                    duration_ms=round(a.duration_ms, 3),
                    error=a.error,
                    response_body=a.body_excerpt,
                )
                for a in attempts
            ],
        )

    async def replay(self, delivery_id: str) -> DeliveryView:
        """Send one delivery again: back to pending, attempts counted from 0, the attempt
        log kept. Switches the endpoint's delivery back on if it was off."""
        rec = await self._get(delivery_id)
        if rec.status == "pending":
            raise Conflict(
                f"delivery {delivery_id!r} is pending already: it will be attempted",
                id=delivery_id,
            )
        await self._endpoint_exists(rec.endpoint_id, unprocessable=True)
        result = await self._deliveries.replay(
            ReplaySpec(rec.endpoint_id, delivery_id=delivery_id), time.time()
        )
        if not result.outbox_ids:
            raise Conflict(
                f"delivery {delivery_id!r} is pending already: it will be attempted",
                id=delivery_id,
            )
        await self._replayed(result)
        return view(await self._get(delivery_id))

    async def replay_failed(
        self,
        endpoint_id: str,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> ReplayFailedAnswer:
        """Send again every failed delivery of an endpoint created in [since, until)."""
        start, end = _range(since, until)
        await self._endpoint_exists(endpoint_id)
        result = await self._deliveries.replay(
            ReplaySpec(endpoint_id, since=start, until=end), time.time()
        )
        await self._replayed(result)
        return ReplayFailedAnswer(
            endpoint_id=endpoint_id,
            replayed=len(result.outbox_ids),
            delivery_reenabled=bool(result.reenabled),
        )

    async def _replayed(self, result: ReplayResult) -> None:
        log.info(
            "deliveries replayed",
            endpoint_id=result.endpoint_ids[0],
            count=len(result.outbox_ids),
            delivery_reenabled=bool(result.reenabled),
        )
        if self._on_replayed is not None:
            await self._on_replayed(result)

    async def _get(self, delivery_id: str) -> DeliveryRecord:
        rec = await self._deliveries.get(delivery_id)
        if rec is None:
            raise NotFound(f"no delivery with id {delivery_id!r}", id=delivery_id)
        return rec

    async def _endpoint_exists(self, endpoint_id: str, *, unprocessable: bool = False) -> None:
        if await self._store.get_endpoint(endpoint_id) is not None:
            return
        if unprocessable:
            raise Unprocessable(
                f"endpoint {endpoint_id!r} of this delivery no longer exists", id=endpoint_id
            )
        raise NotFound(f"no endpoint with id {endpoint_id!r}", id=endpoint_id)


def view(rec: DeliveryRecord) -> DeliveryView:
    status: DeliveryStatus = rec.status  # type: ignore[assignment]
    return DeliveryView(
        id=rec.delivery_id,
        endpoint_id=rec.endpoint_id,
        session_id=rec.session_id,
        status=status,
        attempt_count=rec.attempts,
        last_status_code=rec.last_status,
        last_error=rec.last_error,
        next_attempt_at=_dt(rec.not_before) if rec.status == "pending" and rec.not_before else None,
        created_at=_dt(rec.created_at),
        finished_at=None if rec.finished_at is None else _dt(rec.finished_at),
        replayed_at=None if rec.replayed_at is None else _dt(rec.replayed_at),
    )


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def _ts(value: datetime | None) -> float | None:
    if value is None:
        return None
    if value.tzinfo is None:  # no zone given: UTC, like every time flowhook shows
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def _range(since: datetime | None, until: datetime | None) -> tuple[float | None, float | None]:
    start, end = _ts(since), _ts(until)
    if start is not None and end is not None and start >= end:
        raise InvalidRequest(
            "since must be earlier than until", field="since", expected="since < until"
        )
    return start, end


def _cursor(cursor: str | None) -> int | None:
    if cursor is None or cursor == "":
        return None
    if not cursor.isdigit() or int(cursor) < 1:
        raise InvalidRequest(
            "cursor is not valid: pass the nextCursor of a previous page",
            field="cursor",
            expected="a nextCursor value",
        )
    return int(cursor)
