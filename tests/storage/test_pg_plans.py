"""PostgreSQL: the group commit's outcome update finds its rows by primary key however
much the outbox grew since the statement was first run.

A statement psycopg prepares (on its fifth run) gets a generic plan, chosen once from the
table's size then. Planned over a nearly empty outbox, the update over arrays joined the
whole table (a sequential scan and a hash join) and kept doing so as the outbox grew,
until an autoanalyze happened to replan it: one full scan of the outbox per group commit.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from flowhook.delivery.types import AttemptResult, PendingDelivery
from flowhook.storage import migrate
from flowhook.storage.outcomes import OutcomeWriter
from flowhook.storage.store import SqlStore
from tests.support import postgres
from tests.support.outbox import ADD_MISSING_BODIES, insert_outputs, pending_output

pytestmark = pytest.mark.postgres

ROUNDS_BEFORE_GROWTH = (
    12  # past psycopg preparing it (5th run) and PostgreSQL going generic (5 more)
)
GROWTH = 20_000


def _delivered(ids: list[int]) -> list[tuple[PendingDelivery, AttemptResult, str, int, float]]:
    return [
        (
            PendingDelivery(i, f"d{i}", "ep-1", "s1", i, b"{}"),
            AttemptResult(200, 1.0),
            "delivered",
            1,
            0,
        )
        for i in ids
    ]


def _outbox_scans(conn: sa.Connection) -> tuple[int, int]:
    """Sequential scans of the outbox, and rows they read, in this transaction so far."""
    row = conn.exec_driver_sql(
        "SELECT seq_scan, seq_tup_read FROM pg_stat_xact_user_tables WHERE relname = 'outbox'"
    ).one()
    return int(row[0]), int(row[1])


async def test_outcome_update_stays_on_the_primary_key_as_the_outbox_grows(
    postgres_database: str,
) -> None:
    """Outcomes recorded twelve times on one connection while the outbox holds a few rows,
    then again once 20,000 more rows were added (no ANALYZE in between): that last update
    reads no row by sequential scan, and it moves exactly its rows to delivered."""
    postgres.reset_schema(postgres_database)
    migrate.upgrade(postgres_database)
    store = SqlStore(postgres_database)
    store.start()
    record = OutcomeWriter(store.backend).record
    try:
        with store.engine.connect() as conn:
            for n in range(ROUNDS_BEFORE_GROWTH):
                with conn.begin():
                    ids = insert_outputs(conn, [pending_output(f"small-{n}-{i}") for i in range(3)])
                    record(conn, _delivered(ids))
            with conn.begin():
                conn.execute(
                    sa.text(
                        "INSERT INTO outbox (delivery_id, endpoint_id, session_id, status, "
                        "attempts, not_before, created_at, partition) SELECT 'bulk-' || g, "
                        "'ep-1', 's' || g, 'delivered', 1, 0, 0, 0 "
                        "FROM generate_series(1, :rows) AS g"
                    ),
                    {"rows": GROWTH},
                )
                conn.execute(ADD_MISSING_BODIES, {"body": "{}"})
            with conn.begin():
                ids = insert_outputs(conn, [pending_output(f"late-{i}") for i in range(30)])
                before = _outbox_scans(conn)
                record(conn, _delivered(ids))
                after = _outbox_scans(conn)
            moved = conn.execute(
                sa.text(
                    "SELECT count(*) FROM outbox WHERE delivery_id LIKE 'late-%' AND status = 'delivered'"
                )
            ).scalar_one()
    finally:
        store.close()
    assert after == before, f"sequential scans (scans, rows read): {before} -> {after}"
    assert moved == 30
