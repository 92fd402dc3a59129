"""PostgreSQL: the delivery side's reads of the outbox do work that grows with what they
return, never with every pending output or every session owed something. Measured on a
fresh table (no statistics yet: the planner's choice is the one a new database makes)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa

from flowhook.storage import hotpath_pg as pg
from flowhook.storage import schema as t
from flowhook.storage.deliveries import DeliveryStore
from flowhook.storage.outcomes import MOVES_FROM
from flowhook.storage.store import SqlStore
from tests.storage.test_due_read import INDEX_SCANS, add, counting_work
from tests.support import postgres
from tests.support.outbox import ADD_MISSING_BODIES

pytestmark = pytest.mark.postgres


@pytest.fixture
def db_url(postgres_database: str) -> str:
    """PostgreSQL only: a fresh, empty scratch database."""
    postgres.reset_schema(postgres_database)
    return postgres_database


@pytest.fixture
def pg_store(store: SqlStore) -> SqlStore:
    return store


@contextmanager
def statements(engine: sa.Engine) -> Iterator[list[tuple[str, Any]]]:
    """The statements (with their parameters) sent to the database inside the block."""
    sent: list[tuple[str, Any]] = []

    def before(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        sent.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", before)
    try:
        yield sent
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)


def plan_nodes(engine: sa.Engine, sent: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    """Every node of the plans PostgreSQL makes for these statements now."""
    found: list[dict[str, Any]] = []

    def walk(node: dict[str, Any]) -> None:
        found.append(node)
        for child in node.get("Plans", ()):
            walk(child)

    with engine.connect() as conn:
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        for statement, parameters in sent:
            cursor.execute("EXPLAIN (FORMAT JSON) " + statement, parameters)
            walk(cursor.fetchone()[0][0]["Plan"])
    return found


def indexes_used(engine: sa.Engine, sent: list[tuple[str, Any]]) -> set[str]:
    """Every index in the plans PostgreSQL makes for these statements now."""
    return {n["Index Name"] for n in plan_nodes(engine, sent) if "Index Name" in n}


def tables_read_whole(engine: sa.Engine, sent: list[tuple[str, Any]]) -> set[str]:
    """Every table these statements' plans scan sequentially."""
    nodes = plan_nodes(engine, sent)
    return {n["Relation Name"] for n in nodes if n["Node Type"] == "Seq Scan"}


async def test_pending_reads_by_id_go_by_primary_key(pg_store: SqlStore) -> None:
    """Reading pending outputs by id (with their bodies), and one output's body, uses the
    primary keys alone (of the outbox, and of the bodies' table: never all bodies), on a
    fresh table where most outputs are delivered (no statistics yet): with
    ``status = 'pending'`` in the query, PostgreSQL may serve the ids from a partial index of pending outputs whose leading key is not the id, reading all of it
    per statement (docs/performance.md, "PostgreSQL delivery reads"). Delivered outputs
    are still left out."""
    ds = DeliveryStore(pg_store)
    with pg_store.engine.begin() as conn:
        # As under load: many sessions in every partition, most outputs delivered.
        conn.execute(
            sa.text(
                "INSERT INTO outbox (delivery_id, endpoint_id, session_id, status, "
                "attempts, not_before, created_at, partition) "
                "SELECT 'd-' || g, 'e', 's' || (g % 500), "
                "CASE WHEN g % 10 = 0 THEN 'pending' ELSE 'delivered' END, 0, 0, 0, g % 128 "
                "FROM generate_series(1, 3000) AS g"
            )
        )
        conn.execute(ADD_MISSING_BODIES, {"body": '{"n": 1}'})
    ids = list(range(1, 3001, 3))  # every third: a tenth of them pending
    with statements(pg_store.engine) as sent:
        found = await ds.pending_by_ids(ids)
        body = await ds.pending_body(10)
        gone = await ds.pending_body(11)
    assert [p.outbox_id for p in found] == [i for i in ids if i % 10 == 0]
    assert body == b'{"n": 1}'
    assert gone is None
    assert indexes_used(pg_store.engine, sent) == {"outbox_pkey", "outbox_bodies_pkey"}
    assert "outbox_bodies" not in tables_read_whole(pg_store.engine, sent)


async def test_a_due_read_seeks_as_many_sessions_as_it_may_take(pg_store: SqlStore) -> None:
    """Reading up to 10 due outputs of an endpoint whose 400 sessions each have one waiting
    starts as many index scans as with 40 sessions: the walk over the sessions stops once
    it has found what it may return."""
    ds = DeliveryStore(pg_store)

    async def scans_with(sessions: int) -> int:
        endpoint = f"wide{sessions}"
        for n in range(sessions):
            add(pg_store, endpoint, f"s{n:04d}", 1)
        await ds.due_ids(endpoint, 2e9, 10)  # warm
        with counting_work(pg_store.engine, INDEX_SCANS) as work:
            ids = await ds.due_ids(endpoint, 2e9, 10)
        assert len(ids) == 10
        return work[0]

    small = await scans_with(40)
    large = await scans_with(400)
    assert small > 0
    assert large <= small + small // 2, (small, large)


async def test_due_reads_go_round_the_sessions_from_the_last_one_taken(
    pg_store: SqlStore,
) -> None:
    """Each read starts after the session given (the last one the refill took) and goes
    round once: three reads of 10 cover all 25 sessions with a due head, the third
    wrapping past the end to the first sessions; a session whose head waits for its retry
    is passed over; a read with room for all returns each due head once."""
    ds = DeliveryStore(pg_store)
    heads = {}
    for n in range(25):
        heads[add(pg_store, "round", f"s{n:02d}", 2)[0]] = f"s{n:02d}"
    add(pg_store, "round", "s12w", 1, not_before=4e9, attempts=1)  # waits: never due

    first = await ds.due("round", 2e9, 10)
    assert [first.head_sessions[i] for i in first.heads] == [f"s{n:02d}" for n in range(10)]
    second = await ds.due("round", 2e9, 10, after="s09")
    assert [second.head_sessions[i] for i in second.heads] == [f"s{n:02d}" for n in range(10, 20)]
    third = await ds.due("round", 2e9, 10, after="s19")
    assert [third.head_sessions[i] for i in third.heads] == [
        f"s{n:02d}" for n in (20, 21, 22, 23, 24, 0, 1, 2, 3, 4)
    ]
    every = await ds.due("round", 2e9, 100, after="s12")
    assert sorted(every.heads) == sorted(heads)
    assert len(every.all()) == 50  # and the one behind each head


async def test_the_outcome_update_descends_an_index_by_id(pg_store: SqlStore) -> None:
    """The statement that moves a group commit's outputs to their outcome finds each row
    through the primary key or (status, id), on a fresh table where most outputs are
    delivered: never through a partial index of pending outputs searched by id, which
    PostgreSQL reads whole per row (it did with ``status = 'pending'`` in the statement).
    It moves the pending rows and leaves a delivered one as it was."""
    with pg_store.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO outbox (delivery_id, endpoint_id, session_id, status, "
                "attempts, not_before, created_at, partition) "
                "SELECT 'd-' || g, 'e', 's' || (g % 500), "
                "CASE WHEN g % 10 = 0 THEN 'pending' ELSE 'delivered' END, 0, 0, 0, g % 128 "
                "FROM generate_series(1, 3000) AS g"
            )
        )
        conn.execute(ADD_MISSING_BODIES, {"body": "{}"})
    rows = [
        ("delivered", 1, 0.0, 200, None, 1.0, outbox_id, MOVES_FROM)
        for outbox_id in (10, 20, 21)  # 21 was delivered already
    ]
    params = pg.columns(rows, pg.OUTCOME_COLUMNS)
    with statements(pg_store.engine) as sent:
        sent.append((pg.UPDATE_OUTPUTS, params))
    assert indexes_used(pg_store.engine, sent) <= {"outbox_pkey", "ix_outbox_pending"}
    with pg_store.engine.begin() as conn:
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        cursor.execute(pg.UPDATE_OUTPUTS, params)
        assert cursor.rowcount == 2
        moved = conn.execute(
            sa.select(t.outbox.c.id, t.outbox.c.attempts).where(t.outbox.c.id.in_([10, 20, 21]))
        ).all()
    assert sorted(moved) == [(10, 1), (20, 1), (21, 0)]
