"""A group commit finishes many messages and records many outcomes at once (on SQLite its
inserts are one statement per chunk of rows, flowhook.storage.sqlite_rows): each row still
ends exactly as it would alone."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import Connection, text

from flowhook.delivery.types import AttemptResult, PendingDelivery
from flowhook.storage.hotpath import Refusal, TurnRefused
from flowhook.storage.records import TurnCommit
from flowhook.storage.store import SqlStore
from tests.storage.test_store import endpoint, message


async def _rows(store: SqlStore, sql: str) -> list[tuple[Any, ...]]:
    def run(conn: Connection) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in conn.execute(text(sql))]

    return await store._read(run)


async def test_a_batch_finishes_each_message_once_with_its_own_values(store: SqlStore) -> None:
    """70 turns committed together (more than one chunk): done and failed ones keep their
    own status and error; a second turn of the same message in the batch and a turn of a
    message finished before are refused and write nothing (on PostgreSQL both turns of a
    message committed together used to commit: its one update returned the id once, for
    both)."""
    await store.create_endpoint(endpoint())
    ids = [await store.accept_message(message(f"s{i}", f"m{i}")) for i in range(70)]
    await store.commit_turn(TurnCommit(ids[0], "ep-1", "s0", "u1", {"n": 1}, [b'{"a":0}']))
    turns = [
        TurnCommit(mid, "ep-1", f"s{i}", "u1", {"n": 1}, [b'{"a":1}'])
        if i % 3
        else TurnCommit(mid, "ep-1", f"s{i}", "u1", None, failed=True, error=f"e{i}")
        for i, mid in enumerate(ids)
    ]
    turns.insert(10, TurnCommit(ids[5], "ep-1", "s5", "u1", {"n": 2}, [b'{"again":1}']))
    results = await asyncio.gather(*(store.commit_turn(t) for t in turns), return_exceptions=True)

    refused = [i for i, r in enumerate(results) if isinstance(r, TurnRefused)]
    assert refused == [0, 10]
    assert all(
        r.refusal is Refusal.ALREADY_PROCESSED for r in results if isinstance(r, TurnRefused)
    )
    stored = {
        int(r[0]): (r[1], r[2])
        for r in await _rows(store, "SELECT id, status, error FROM messages")
    }
    for i, mid in enumerate(ids):
        if i == 0 or i % 3:
            assert stored[mid] == ("done", None)
        else:
            assert stored[mid] == ("failed", f"e{i}")
    bodies = await _rows(store, "SELECT body FROM outbox_bodies")
    assert len(bodies) == 1 + sum(1 for i in range(70) if i % 3)
    assert ('{"again":1}',) not in bodies


async def test_a_batch_of_outcomes_moves_each_output_as_alone(store: SqlStore) -> None:
    """Outcomes recorded together: 70 delivered ones (more than one chunk of attempt
    rows), a failed one, a retry, and two outcomes of one output in the same batch applied in order; an
    outcome for an output no longer pending changes nothing."""
    await store.create_endpoint(endpoint())
    mid = await store.accept_message(message("s1", "m"))
    outputs: list[PendingDelivery] = await store.commit_turn(
        TurnCommit(mid, "ep-1", "s1", "u1", {"n": 1}, [b'{"o":%d}' % i for i in range(80)])
    )
    ok, bad = AttemptResult(200, 1.0), AttemptResult(500, 2.0, error="boom")
    writes = [store.record_attempt(o, ok, status="delivered", attempts=1) for o in outputs[:70]]
    writes.append(store.record_attempt(outputs[70], bad, status="failed", attempts=8))
    writes.append(
        store.record_attempt(outputs[71], bad, status="pending", attempts=1, not_before=9.0)
    )
    writes.append(
        store.record_attempt(outputs[72], bad, status="pending", attempts=1, not_before=5.0)
    )
    writes.append(store.record_attempt(outputs[72], ok, status="delivered", attempts=2))
    await asyncio.gather(*writes)
    # An outcome recorded late for an output already delivered leaves it delivered.
    await store.record_attempt(outputs[0], bad, status="failed", attempts=2)

    rows = {
        int(r[0]): r[1:]
        for r in await _rows(
            store, "SELECT id, status, attempts, not_before, last_status, last_error FROM outbox"
        )
    }
    for o in outputs[:70]:
        assert rows[o.outbox_id] == ("delivered", 1, 0.0, 200, None)
    assert rows[outputs[70].outbox_id] == ("failed", 8, 0.0, 500, "boom")
    assert rows[outputs[71].outbox_id] == ("pending", 1, 9.0, 500, "boom")
    assert rows[outputs[72].outbox_id] == ("delivered", 2, 0.0, 200, None)
    assert all(rows[o.outbox_id][0] == "pending" for o in outputs[73:])
    finished = await _rows(store, "SELECT count(*) FROM outbox WHERE finished_at IS NOT NULL")
    assert finished == [(72,)]
    attempts = await _rows(store, "SELECT count(*) FROM delivery_attempts")
    assert attempts == [(75,)]


@pytest.mark.parametrize("count", [1, 4, 5, 63, 64, 65])
async def test_chunk_edges_finish_every_message(store: SqlStore, count: int) -> None:
    """Batches of sizes around the insert chunk sizes (64, 16, 4, 1) finish every message
    and store every output."""
    await store.create_endpoint(endpoint())
    ids = [await store.accept_message(message(f"s{i}", f"m{i}")) for i in range(count)]
    await asyncio.gather(
        *(
            store.commit_turn(TurnCommit(mid, "ep-1", f"s{i}", "u1", {"n": 1}, [b"{}"]))
            for i, mid in enumerate(ids)
        )
    )
    assert await _rows(store, "SELECT count(*) FROM messages WHERE status = 'done'") == [(count,)]
    assert await _rows(store, "SELECT count(*) FROM outbox") == [(count,)]
