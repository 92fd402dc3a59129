"""DeliveryStore (dead letters, replay, delivery switch, sweep, metrics) on both backends."""

from __future__ import annotations

import asyncio
import time

import pytest
import sqlalchemy as sa

from flowhook.delivery.types import AttemptResult, PendingDelivery
from flowhook.storage import migrate
from flowhook.storage.deliveries import DeliveryFilter, DeliveryStore, ReplaySpec
from flowhook.storage.engine import normalise_url
from flowhook.storage.records import EndpointRecord, TurnCommit
from flowhook.storage.store import SqlStore


def endpoint(eid: str) -> EndpointRecord:
    now = time.time()
    return EndpointRecord(
        id=eid,
        name=f"name-{eid}",
        flow="echo",
        url_token=f"tok-{eid}",
        auth_method="none",
        webhook_url="http://127.0.0.1:9/hook",
        webhook_user=None,
        webhook_password=None,
        locale=None,
        active=True,
        created_at=now,
        updated_at=now,
    )


async def outputs(store: SqlStore, eid: str, session: str, count: int) -> list[PendingDelivery]:
    bodies = [f'{{"n":{i}}}'.encode() for i in range(count)]
    return await store.commit_turn(TurnCommit(0, eid, session, "u1", {}, bodies=bodies))


async def fail(store: SqlStore, item: PendingDelivery, attempts: int = 1) -> None:
    for n in range(1, attempts + 1):
        status = "failed" if n == attempts else "pending"
        await store.record_attempt(
            item,
            AttemptResult(500, 12.5, error="HTTP 500", body_excerpt="oops"),
            status=status,
            attempts=n,
        )


async def test_list_filters_pages_and_shows_attempts(store: SqlStore) -> None:
    """Deliveries are listed newest first, filtered by session, status and creation time,
    paged by id; each attempt is kept with status, duration, error and body excerpt."""
    ds = DeliveryStore(store)
    await store.create_endpoint(endpoint("e1"))
    a = await outputs(store, "e1", "A", 3)
    b = await outputs(store, "e1", "B", 2)
    await outputs(store, "other", "A", 1)
    await fail(store, a[1], attempts=3)

    everything = await ds.list_for_endpoint(DeliveryFilter("e1"))
    assert [r.outbox_id for r in everything] == sorted((i.outbox_id for i in a + b), reverse=True)
    by_session = await ds.list_for_endpoint(DeliveryFilter("e1", session_id="B"))
    assert {r.delivery_id for r in by_session} == {i.delivery_id for i in b}
    failed = await ds.list_for_endpoint(DeliveryFilter("e1", status="failed"))
    assert [(r.delivery_id, r.attempts, r.last_status) for r in failed] == [
        (a[1].delivery_id, 3, 500)
    ]
    page1 = await ds.list_for_endpoint(DeliveryFilter("e1", limit=2))
    page2 = await ds.list_for_endpoint(DeliveryFilter("e1", limit=2, before_id=page1[-1].outbox_id))
    assert [r.outbox_id for r in page1 + page2] == [r.outbox_id for r in everything[:4]]
    created = everything[0].created_at
    assert await ds.list_for_endpoint(DeliveryFilter("e1", since=created + 1)) == []
    assert len(await ds.list_for_endpoint(DeliveryFilter("e1", until=created + 1))) == 5

    got = await ds.get(a[1].delivery_id)
    assert got is not None
    assert (got.status, got.body) == ("failed", b'{"n":1}')
    attempts = await ds.attempts(got.outbox_id)
    assert [(x.status, x.duration_ms, x.error, x.body_excerpt) for x in attempts] == [
        (500, 12.5, "HTTP 500", "oops")
    ] * 3
    assert await ds.get("msg_missing") is None


async def test_replay_resets_to_pending_keeps_the_log_and_switches_delivery_on(
    store: SqlStore,
) -> None:
    """Replaying a failed delivery sets it pending with attempts counted from 0 (the
    attempt rows stay) and clears the endpoint's delivery switch; a pending one is left."""
    ds = DeliveryStore(store)
    await store.create_endpoint(endpoint("e1"))
    (item,) = await outputs(store, "e1", "A", 1)
    (other,) = await outputs(store, "e1", "A", 1)
    await fail(store, item, attempts=2)
    assert await ds.set_delivery_disabled("e1", "gone", time.time()) is True
    assert await ds.disabled_endpoints() == {"e1": "gone"}

    res = await ds.replay(ReplaySpec("e1", delivery_id=item.delivery_id), 123.0)
    assert res.outbox_ids == (item.outbox_id,)
    assert res.reenabled == ("e1",)
    row = await ds.get(item.delivery_id)
    assert row is not None
    assert (row.status, row.attempts, row.finished_at, row.replayed_at) == (
        "pending",
        0,
        None,
        123.0,
    )
    assert len(await ds.attempts(item.outbox_id)) == 2
    assert await ds.disabled_endpoints() == {}
    again = await ds.replay(ReplaySpec("e1", delivery_id=other.delivery_id), 124.0)
    assert (again.outbox_ids, again.reenabled) == ((), ())


async def test_replay_failed_takes_only_failed_ones_in_the_time_range(store: SqlStore) -> None:
    """replay of an endpoint's failed deliveries respects [since, until) on creation time and
    leaves delivered, pending and other endpoints' rows alone."""
    ds = DeliveryStore(store)
    old = await outputs(store, "e1", "A", 2)
    other = await outputs(store, "e2", "A", 1)
    await fail(store, old[0])
    await fail(store, other[0])
    await asyncio.sleep(0.02)
    cut = time.time()
    await asyncio.sleep(0.02)
    new = await outputs(store, "e1", "B", 2)
    await fail(store, new[0])
    await store.record_attempt(new[1], AttemptResult(200, 1.0), status="delivered", attempts=1)

    res = await ds.replay(ReplaySpec("e1", since=cut), 1.0)
    assert res.outbox_ids == (new[0].outbox_id,)
    res = await ds.replay(ReplaySpec("e1", until=cut), 2.0)
    assert res.outbox_ids == (old[0].outbox_id,)
    statuses = {r.delivery_id: r.status for r in await ds.list_for_endpoint(DeliveryFilter("e2"))}
    assert statuses == {other[0].delivery_id: "failed"}


async def test_sweep_reads_pending_of_enabled_endpoints_and_stats_count_them(
    store: SqlStore,
) -> None:
    """pending_ids skips endpoints whose delivery is off and rows no longer pending;
    pending_by_ids re-checks the status; pending_stats counts pending per endpoint."""
    ds = DeliveryStore(store)
    await store.create_endpoint(endpoint("on"))
    await store.create_endpoint(endpoint("off"))
    on = await outputs(store, "on", "A", 3)
    off = await outputs(store, "off", "A", 2)
    await store.record_attempt(on[0], AttemptResult(200, 1.0), status="delivered", attempts=1)
    await ds.set_delivery_disabled("off", "gone", time.time())

    ids = await ds.pending_ids(100)
    assert ids == [on[1].outbox_id, on[2].outbox_id]
    rows = await ds.pending_by_ids([on[0].outbox_id, on[2].outbox_id, on[1].outbox_id])
    assert [r.delivery_id for r in rows] == [on[1].delivery_id, on[2].delivery_id]
    assert rows[0].body == on[1].body
    by_endpoint = [r.outbox_id for r in await ds.pending_of_endpoint("off")]
    assert by_endpoint == [i.outbox_id for i in off]
    stats = {s.endpoint_id: s.count for s in await ds.pending_stats()}
    assert stats == {"on": 2, "off": 2}
    assert all(s.oldest <= time.time() for s in await ds.pending_stats())
    assert await ds.set_delivery_disabled("missing", None, 0.0) is False


async def test_migration_0003_adds_the_columns_and_downgrades(db_url: str) -> None:
    """An 0002 database with an endpoint upgrades to 0003 (new columns empty) and back."""
    migrate.upgrade(db_url, "0002")
    engine = sa.create_engine(normalise_url(db_url))
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO endpoints (id, name, flow, url_token, auth_method, "
                    "webhook_url, active, created_at, updated_at) VALUES "
                    "('e1', 'n', 'echo', 't', 'none', 'http://x/', true, 1, 1)"
                )
            )
        migrate.upgrade(db_url, "0003")
        assert migrate.current(db_url) == "0003"
        with engine.connect() as conn:
            row = conn.execute(
                sa.text("SELECT delivery_disabled_reason, delivery_disabled_at FROM endpoints")
            ).one()
            assert tuple(row) == (None, None)
            conn.execute(sa.text("SELECT replayed_at FROM outbox"))
        from alembic import command

        command.downgrade(migrate.alembic_config(db_url), "0002")
        assert migrate.current(db_url) == "0002"
        with engine.connect() as conn:
            cols = {c["name"] for c in sa.inspect(conn).get_columns("endpoints")}
            assert "delivery_disabled_reason" not in cols
            assert conn.execute(sa.text("SELECT count(*) FROM endpoints")).scalar() == 1
    finally:
        engine.dispose()


@pytest.mark.parametrize("limit", [1, 3])
async def test_pending_ids_respects_the_limit_oldest_first(store: SqlStore, limit: int) -> None:
    """The sweep looks at a bounded page of the oldest pending ids."""
    ds = DeliveryStore(store)
    items = await outputs(store, "e1", "A", 4)
    assert await ds.pending_ids(limit) == [i.outbox_id for i in items[:limit]]
