"""SQLite inserts of many rows in one statement (flowhook.storage.sqlite_rows)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, create_engine, text

from flowhook.errors import StorageError
from flowhook.storage.outcomes import raw_cursor
from flowhook.storage.sqlite_rows import CHUNKS, MultiRowInsert
from flowhook.storage.writer import GroupCommitWriter

INSERT = MultiRowInsert.of("INSERT INTO t (name, size, note) VALUES (?, ?, 'kept')")
UPSERT = MultiRowInsert.of(
    "INSERT INTO counts (name, n) VALUES (?, 1) ON CONFLICT (name) DO UPDATE SET n = counts.n + 1"
)
SCHEMA = (
    "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, "
    "size INTEGER, note TEXT)",
    "CREATE TABLE counts (name TEXT PRIMARY KEY, n INTEGER NOT NULL)",
)


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(tmp_path_factory.mktemp("rows") / "rows.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    for statement in SCHEMA:
        conn.execute(statement)
    yield conn
    conn.close()


names = st.text(max_size=40)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(
        st.tuples(names, st.integers(-(2**63), 2**63 - 1)), max_size=150, unique_by=lambda r: r[0]
    )
)
def test_ids_returned_are_the_rows_inserted_in_order(
    database: sqlite3.Connection, rows: list[tuple[str, int]]
) -> None:
    """Any number of rows (chunked 64/16/4/1), with any text: every row is stored once,
    and the ids returned, in row order, are the ids the rows got."""
    database.execute("DELETE FROM t")
    database.execute("BEGIN")
    ids = INSERT.run_returning_ids(database.cursor(), rows)
    database.execute("COMMIT")
    stored = database.execute("SELECT id, name, size, note FROM t ORDER BY id").fetchall()
    assert [(i, name, size, "kept") for i, (name, size) in zip(ids, rows, strict=True)] == [
        tuple(r) for r in stored
    ]


def test_an_upsert_applies_each_row_in_turn(database: sqlite3.Connection) -> None:
    """The same key twice in one statement (and across chunk sizes) counts twice."""
    database.execute("DELETE FROM counts")
    rows = [("a",), ("b",), ("a",)] * 30  # 90 rows: chunks of 64, 16, 4, 4, 1, 1
    assert len(rows) > CHUNKS[0]
    database.execute("BEGIN")
    UPSERT.run(database.cursor(), rows)
    database.execute("COMMIT")
    assert dict(database.execute("SELECT name, n FROM counts").fetchall()) == {"a": 60, "b": 30}


def test_a_row_breaking_a_constraint_rolls_the_transaction_back(
    database: sqlite3.Connection,
) -> None:
    """OR ROLLBACK: a duplicate in the third row undoes the whole transaction (the rows
    of earlier statements too), not just the statement."""
    database.execute("DELETE FROM t")
    database.execute("BEGIN")
    INSERT.run(database.cursor(), [("first", 1)])
    with pytest.raises(sqlite3.IntegrityError):
        INSERT.run(database.cursor(), [("x", 1), ("y", 2), ("x", 3), ("z", 4)])
    assert not database.in_transaction
    assert database.execute("SELECT count(*) FROM t").fetchone() == (0,)


def test_only_inserts_are_accepted() -> None:
    """A statement that is not a plain INSERT is refused where it is declared."""
    with pytest.raises(ValueError, match="not an INSERT"):
        MultiRowInsert.of("REPLACE INTO t (name) VALUES (?)")


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with eng.begin() as conn:
        for statement in SCHEMA:
            conn.execute(text(statement))
    yield eng
    eng.dispose()


def insert_names(conn: Connection, writes: Sequence[list[str]]) -> list[Any]:
    cursor = raw_cursor(conn)
    return [INSERT.run_returning_ids(cursor, [(n, 0) for n in names]) for names in writes]


async def test_the_writer_fails_only_the_write_that_broke_a_constraint(engine: Engine) -> None:
    """Through the group-commit writer, on a real file: writes queued together share one
    transaction; when one of them breaks a constraint inside a multi-row insert, the
    transaction is rolled back whole and the writer commits every other write on its
    own, while the bad one gets its error."""
    writer = GroupCommitWriter(engine)
    writer.start()
    try:
        results = await asyncio.gather(
            writer.write(insert_names, ["a", "b"]),
            writer.write(insert_names, ["c", "d", "c"]),
            writer.write(insert_names, ["e"]),
            return_exceptions=True,
        )
    finally:
        writer.stop()
    assert isinstance(results[1], StorageError)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT id, name FROM t ORDER BY id")).all()
    assert [name for _, name in stored] == ["a", "b", "e"]
    assert [results[0], results[2]] == [[stored[0][0], stored[1][0]], [stored[2][0]]]
