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


def insert_raw(conn: Connection, values: Sequence[int]) -> list[int]:
    """Like insert_values, on the driver's cursor (as the hot-path writes are)."""
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    for v in values:
        cursor.execute("INSERT INTO t (v) VALUES (?)", (v,))
        if v < 0:
            raise Conflict(f"negative {v}")
    return list(values)


async def test_driver_cursor_writes_commit_and_a_failing_one_rolls_back(engine: Engine) -> None:
    """Writes made on the driver connection (no SQLAlchemy transaction) are committed
    when resolved; one that fails after writing its row leaves nothing behind, and the
    others of its batch still commit."""
    writer = GroupCommitWriter(engine)
    writer.start()
    try:
        results = await asyncio.gather(
            *(writer.write(insert_raw, v) for v in (1, 2, -3, 4)), return_exceptions=True
        )
        assert results[:2] == [1, 2]
        assert isinstance(results[2], Conflict)
        assert results[3] == 4
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT v FROM t ORDER BY v")).scalars().all()
        assert stored == [1, 2, 4]
    finally:
        writer.stop()


async def test_writes_submitted_before_stop_are_committed(engine: Engine) -> None:
    """Writes submitted in the same turn of the event loop as stop() (not yet handed to
    the writer thread) are still committed before the thread ends."""
    writer = GroupCommitWriter(engine)
    writer.start()
    futures = [writer.submit(insert_raw, v) for v in range(10)]
    writer.stop()
    assert count(engine) == 10
    assert await asyncio.gather(*futures) == list(range(10))


async def test_commits_are_spaced_but_an_idle_write_commits_at_once(engine: Engine) -> None:
    """With a spacing of 0.5 s a write to an idle writer commits at once; a write
    submitted right after that commit waits for the spacing; writes arriving steadily
    while a commit is spaced share the next one (40 writes over 0.4 s: 2 commits, not
    40)."""
    writer = GroupCommitWriter(engine, min_spacing=0.5)
    writer.start()
    try:
        loop = asyncio.get_running_loop()
        began = loop.time()
        await writer.write(insert_values, 1)
        assert loop.time() - began < 0.4
        began = loop.time()
        await writer.write(insert_values, 2)
        assert loop.time() - began >= 0.4
        commits = writer.commits

        async def later(v: int) -> int:
            await asyncio.sleep(v / 100)
            return int(await writer.write(insert_values, v))

        await asyncio.gather(*(later(v) for v in range(10, 50)))
        assert writer.commits - commits <= 2
        assert count(engine) == 42
    finally:
        writer.stop()
