"""Delivery ids grow with time, so a group commit's outputs append to the delivery id
index instead of each landing on a random page of it (one more page of log per output)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from flowhook.ids import uuid4_hex
from flowhook.storage import turn_rows
from flowhook.storage.records import TurnCommit
from flowhook.storage.store import SqlStore
from tests.storage.test_store import endpoint, message
from tests.support.sqlite_log import log_pages, store_without_checkpoints

BODY = b'{"text":"hello"}'


async def _accept(store: SqlStore, count: int) -> list[int]:
    return [await store.accept_message(message("s1", f"m{i}")) for i in range(count)]


async def _commit_outputs(store: SqlStore, ids: list[int], bodies: int) -> None:
    """The turns of these messages of session s1, each with ``bodies`` outputs, committed
    together."""
    await asyncio.gather(
        *(
            store.commit_turn(TurnCommit(mid, "ep-1", "s1", "u1", {"n": 1}, [BODY] * bodies))
            for mid in ids
        )
    )


async def _pages_for_one_commit(database: Path) -> int:
    """Log pages one group commit of 40 outputs adds, with 8,000 outputs stored before."""
    async with store_without_checkpoints(database) as store:
        await store.create_endpoint(endpoint())
        for _ in range(40):
            await _commit_outputs(store, await _accept(store, 1), bodies=200)
        waiting = await _accept(store, 40)
        with sqlite3.connect(database) as side:
            busy, _, _ = side.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0
        assert log_pages(database) == 0
        await _commit_outputs(store, waiting, bodies=1)
        return log_pages(database)


async def test_a_commit_of_outputs_appends_to_the_delivery_id_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite: with time-ordered delivery ids a commit of 40 outputs (40 turns of one
    session, so every other index they touch is appended to as well) writes at least 20
    pages fewer to the log than the same commit with random ids, which scatter over the
    index of 8,000 stored ones (32 pages against 70 when this was written)."""
    ordered = await _pages_for_one_commit(tmp_path / "ordered.db")
    monkeypatch.setattr(turn_rows, "new_delivery_id", lambda: "msg_" + uuid4_hex())
    scattered = await _pages_for_one_commit(tmp_path / "random.db")
    assert ordered + 20 <= scattered, (ordered, scattered)


async def test_delivery_ids_ascend_with_commit_time(store: SqlStore) -> None:
    """On every backend, outputs committed in a later millisecond have larger delivery
    ids, each still ``msg_`` and 32 hex digits."""
    await store.create_endpoint(endpoint())
    for _ in range(5):
        await _commit_outputs(store, await _accept(store, 1), bodies=1)
        await asyncio.sleep(0.002)

    def run(conn: Connection) -> list[str]:
        return [str(r[0]) for r in conn.execute(text("SELECT delivery_id FROM outbox ORDER BY id"))]

    ids = await store._read(run)
    assert len(ids) == 5
    assert ids == sorted(ids)
    assert all(len(i) == 36 and i.startswith("msg_") for i in ids)
    assert all(int(i[4:], 16) >= 0 for i in ids)
