"""PostgreSQL: a read is its statements and nothing more. No transaction is opened around
it (no BEGIN, no ROLLBACK at check-in), and the statements a connection prepared outlive
the read, so a read repeated under load is planned once, not on every call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Connection

from flowhook.storage import migrate
from flowhook.storage.deliveries import DeliveryStore
from flowhook.storage.store import SqlStore
from tests.support import postgres

pytestmark = pytest.mark.postgres


@pytest.fixture
async def one_reader(postgres_database: str) -> AsyncIterator[SqlStore]:
    """A fresh database and a store with one read thread (its reads reuse one connection)."""
    postgres.reset_schema(postgres_database)
    migrate.upgrade(postgres_database)
    store = SqlStore(postgres_database, read_threads=1)
    store.start()
    yield store
    store.close()


def _status_after_select(conn: Connection) -> Any:
    conn.exec_driver_sql("SELECT 1").scalar()
    driver: psycopg.Connection[Any] = conn.connection.driver_connection  # type: ignore[assignment]
    return driver.info.transaction_status


async def test_a_read_opens_no_transaction(one_reader: SqlStore) -> None:
    """After a read's statement its connection is idle, not in a transaction: nothing is
    sent to begin one nor to roll it back, for the store's and the outbox reads alike."""
    assert await one_reader._read(_status_after_select) == psycopg.pq.TransactionStatus.IDLE
    deliveries = DeliveryStore(one_reader)
    assert await deliveries._read(_status_after_select) == psycopg.pq.TransactionStatus.IDLE


async def test_prepared_statements_outlive_a_read(one_reader: SqlStore) -> None:
    """A read repeated on the same connection gets prepared (psycopg prepares a statement
    on its fifth use) and stays prepared across reads."""
    for i in range(8):
        assert await one_reader.load_session("endpoint", f"session-{i}") is None
    prepared = await one_reader._read(
        lambda c: c.exec_driver_sql(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%%FROM sessions%%'"
        ).scalar_one()
    )
    assert prepared == 1


async def test_a_transaction_still_commits_as_one(one_reader: SqlStore) -> None:
    """``transact`` keeps its transaction: its statements commit together."""

    def run(conn: Connection) -> Any:
        conn.exec_driver_sql("CREATE TEMP TABLE IF NOT EXISTS t_probe (x int)")
        return _status_after_select(conn)

    assert await one_reader.transact(run) == psycopg.pq.TransactionStatus.INTRANS
