"""The group-commit writer: batching, isolation of a failing write, durability on resolve."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, create_engine, text

from flowhook.errors import Conflict, StorageError
from flowhook.storage.writer import GroupCommitWriter


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with eng.begin() as conn:
        conn.execute(text("CREATE TABLE t (v INTEGER PRIMARY KEY)"))
    yield eng
    eng.dispose()


def insert_values(conn: Connection, values: Sequence[int]) -> list[int]:
    for v in values:
        if v < 0:
            raise Conflict(f"negative {v}")
        conn.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": v})
    return list(values)


def count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM t")).scalar_one())


async def test_resolved_writes_are_committed_and_batched(engine: Engine) -> None:
    """Every resolved write is visible to another connection; many writes share commits."""
    writer = GroupCommitWriter(engine)
    writer.start()
    try:
        results = await asyncio.gather(*(writer.write(insert_values, i) for i in range(500)))
        assert results == list(range(500))
        assert count(engine) == 500
        assert writer.writes == 500
        assert writer.commits < 500
    finally:
        writer.stop()


async def test_a_failing_write_fails_alone(engine: Engine) -> None:
    """A write that raises gets its own error; the others queued with it still commit."""
    writer = GroupCommitWriter(engine)
    writer.start()
    try:
        results = await asyncio.gather(
            *(writer.write(insert_values, v) for v in (1, 2, -3, 4)), return_exceptions=True
        )
        assert results[:2] == [1, 2]
        assert isinstance(results[2], Conflict)
        assert results[3] == 4
        assert count(engine) == 3
    finally:
        writer.stop()


async def test_driver_errors_become_storage_errors(engine: Engine) -> None:
    """A database error is translated to StorageError at the boundary."""

    def bad(conn: Connection, _args: Sequence[Any]) -> list[Any]:
        conn.execute(text("INSERT INTO missing_table VALUES (1)"))
        return [None]

    writer = GroupCommitWriter(engine)
    writer.start()
    try:
        with pytest.raises(StorageError, match="OperationalError"):
            await writer.write(bad, None)
        assert await writer.write(insert_values, 9) == 9
    finally:
        writer.stop()
