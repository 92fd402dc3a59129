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


class Recorder:
    """Batch functions that log each call's arguments, in call order, and insert them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[int]]] = []

    def kind(self, name: str) -> Any:
        def batch(conn: Connection, values: Sequence[int]) -> list[str]:
            self.calls.append((name, list(values)))
            for v in values:
                conn.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": v})
            return [f"{name}{v}" for v in values]

        return batch


async def submit_in_one_loop_turn(
    writer: GroupCommitWriter, writes: list[tuple[Any, int]]
) -> list[Any]:
    """Submit every write before the loop turns once, so they share one batch."""
    futures = [writer.submit(fn, v) for fn, v in writes]
    return await asyncio.gather(*futures)


async def test_order_free_kinds_run_once_per_kind_and_results_keep_their_places(
    engine: Engine,
) -> None:
    """Interleaved writes of order-free kinds reach each batch function in one call, in
    submission order, and every future still gets its own write's result."""
    rec = Recorder()
    accept, turn, outcome = rec.kind("a"), rec.kind("t"), rec.kind("o")
    writer = GroupCommitWriter(engine)
    writer.order_free(accept, turn, outcome)
    writer.start()
    try:
        writes = [(accept, 1), (turn, 2), (accept, 3), (outcome, 4), (turn, 5), (accept, 6)]
        results = await submit_in_one_loop_turn(writer, writes)
        assert results == ["a1", "t2", "a3", "o4", "t5", "a6"]
        assert rec.calls == [("a", [1, 3, 6]), ("t", [2, 5]), ("o", [4])]
        assert writer.commits == 1
        assert count(engine) == 6
    finally:
        writer.stop()


async def test_a_write_of_another_kind_keeps_its_place_between_order_free_ones(
    engine: Engine,
) -> None:
    """Nothing is gathered across a write of an undeclared kind: what came before it runs
    before it, what came after it runs after it, and its own neighbours still group."""
    rec = Recorder()
    accept, turn, config = rec.kind("a"), rec.kind("t"), rec.kind("c")
    writer = GroupCommitWriter(engine)
    writer.order_free(accept, turn)
    writer.start()
    try:
        writes = [
            (accept, 1),
            (turn, 2),
            (accept, 3),
            (config, 4),
            (config, 5),
            (accept, 6),
            (turn, 7),
            (accept, 8),
        ]
        results = await submit_in_one_loop_turn(writer, writes)
        assert results == ["a1", "t2", "a3", "c4", "c5", "a6", "t7", "a8"]
        assert rec.calls == [
            ("a", [1, 3]),
            ("t", [2]),
            ("c", [4, 5]),
            ("a", [6, 8]),
            ("t", [7]),
        ]
    finally:
        writer.stop()


async def test_undeclared_kinds_group_only_when_adjacent(engine: Engine) -> None:
    """Without ``order_free`` the writer keeps every write's order: only neighbours of one
    kind share a call."""
    rec = Recorder()
    accept, turn = rec.kind("a"), rec.kind("t")
    writer = GroupCommitWriter(engine)
    writer.start()
    try:
        writes = [(accept, 1), (accept, 2), (turn, 3), (accept, 4)]
        assert await submit_in_one_loop_turn(writer, writes) == ["a1", "a2", "t3", "a4"]
        assert rec.calls == [("a", [1, 2]), ("t", [3]), ("a", [4])]
    finally:
        writer.stop()


async def test_a_failing_order_free_write_fails_alone(engine: Engine) -> None:
    """A gathered write that fails sends the batch to the one-by-one retry: it alone gets
    the error, the others commit, each with its own result."""
    rec = Recorder()
    accept, turn = rec.kind("a"), rec.kind("t")
    writer = GroupCommitWriter(engine)
    writer.order_free(accept, turn)
    writer.start()
    try:
        # 3 twice: the batch fails on the primary key; alone, the later write of 3 fails
        writes = [(accept, 1), (turn, 3), (accept, 3), (accept, 4)]
        futures = [writer.submit(fn, v) for fn, v in writes]
        results = await asyncio.gather(*futures, return_exceptions=True)
        assert results[:2] == ["a1", "t3"]
        assert isinstance(results[2], StorageError)
        assert results[3] == "a4"
        assert count(engine) == 3
    finally:
        writer.stop()
