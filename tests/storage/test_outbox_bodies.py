"""Output bodies live apart from the outbox rows whose state every attempt changes
(``outbox_bodies``, migration 0014): an attempt's outcome no longer rewrites the body, the
migration moves every stored body byte for byte (and back), and the history purge takes
an output's body with its row."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from alembic import command

from flowhook.delivery.types import AttemptResult
from flowhook.storage import housekeeping, migrate
from flowhook.storage import schema as t
from flowhook.storage.deliveries import DeliveryStore
from flowhook.storage.engine import normalise_url
from flowhook.storage.outcomes import OutcomeWriter
from flowhook.storage.records import TurnCommit
from flowhook.storage.store import SqlStore
from tests.storage.test_store import endpoint, message
from tests.support.outbox import insert_outputs, pending_output

# A turn's output as large as the ones of ``bench failing`` (a 100 KiB text echoed back).
LARGE_BODY = orjson.dumps({"sessionId": "s1", "text": "x" * 100_000})


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqlStore]:
    """A SQLite store that never checkpoints its WAL (nor starts it over): the WAL file's
    growth is what its transactions wrote."""
    url = f"sqlite:///{tmp_path / 'flowhook.db'}"
    migrate.upgrade(url)
    s = SqlStore(url, wal_checkpoints=False)

    def no_autocheckpoint(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("PRAGMA wal_autocheckpoint=0")

    sa.event.listen(s.engine, "connect", no_autocheckpoint)
    s.start()
    yield s
    s.close()


def wal_emptied(store: SqlStore) -> Path:
    """Checkpoint the WAL into the database and truncate it to nothing; returns its path."""
    with store.engine.connect() as conn:
        busy, _frames, _done = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
    assert busy == 0
    database = store.engine.url.database
    assert database is not None
    wal = Path(database + "-wal")
    assert wal.stat().st_size == 0
    return wal


async def test_a_failed_attempt_writes_as_little_to_the_wal_for_100_kib_as_for_2_bytes(
    sqlite_store: SqlStore,
) -> None:
    """Outputs of 100 KiB and outputs of 2 bytes each fail an attempt, one outcome per
    transaction (the attempt logged, the row moved to its retry). Each outcome writes
    under 24 KiB to SQLite's WAL (5 pages: the attempt's row and its index entry, the
    outbox row and its two due-time index entries), the same whatever the body's size, and
    the body read back for the retry is the one stored. With the body inside the outbox
    row SQLite rewrote the whole record, overflow pages included: about 230 KiB each."""
    store = sqlite_store
    large = await _wal_per_failed_outcome(store, LARGE_BODY)
    small = await _wal_per_failed_outcome(store, b"{}")
    assert large < 24 * 1024, f"{large:.0f} bytes of WAL per outcome of a 100 KiB output"
    assert large <= small + 4 * 1024 + 24, f"{large:.0f} against {small:.0f} for 2 bytes"


async def _wal_per_failed_outcome(store: SqlStore, body: bytes) -> float:
    """Bytes of WAL per outcome of five outputs of ``body`` failing an attempt each."""
    mid = await store.accept_message(message())
    outputs = await store.commit_turn(_turn(mid, [body] * 5))
    wal = wal_emptied(store)
    for n, item in enumerate(outputs):
        await store.record_attempt(
            item,
            AttemptResult(500, 3.0, "HTTP 500", body_excerpt="down"),
            status="pending",
            attempts=1,
            not_before=time.time() + 60 + n,
        )
    per_outcome = wal.stat().st_size / len(outputs)
    ds = DeliveryStore(store)
    for item in outputs:
        assert await ds.pending_body(item.outbox_id) == body
    moved = await ds.pending_by_ids([i.outbox_id for i in outputs])
    assert [(p.attempts, p.body) for p in moved] == [(1, body)] * 5
    return per_outcome


async def test_the_purge_and_an_endpoint_deletion_leave_no_body_behind(store: SqlStore) -> None:
    """An endpoint with a delivered and a pending output is deleted (forced: its pending
    output fails); the purge then deletes both outputs and both bodies. Another endpoint's
    pending output keeps its body, and a purge that finds nothing old deletes no body."""
    await store.create_endpoint(endpoint())
    await store.create_endpoint(endpoint(name="other", token="tok-2", eid="ep-2"))
    mid = await store.accept_message(message())
    delivered, owed = await store.commit_turn(_turn(mid, [b'{"a":1}', b'{"a":2}']))
    await store.record_attempt(delivered, AttemptResult(200, 1.0), status="delivered", attempts=1)
    other_mid = await store.accept_message(message(eid="ep-2"))
    (kept,) = await store.commit_turn(_turn(other_mid, [b'{"b":1}'], "ep-2"))
    assert (await store.delete_endpoint("ep-1", force=True)).deleted
    await housekeeping.purge_history(store, time.time() - 3600)
    assert _bodies(store) == {delivered.outbox_id, owed.outbox_id, kept.outbox_id}

    counts = await housekeeping.purge_history(store, time.time() + 1)
    assert counts["outbox"] == 2
    assert _bodies(store) == {kept.outbox_id}
    assert _orphan_bodies(store) == 0
    assert await DeliveryStore(store).pending_body(kept.outbox_id) == b'{"b":1}'


def _turn(message_id: int, bodies: list[bytes], endpoint_id: str = "ep-1") -> TurnCommit:
    return TurnCommit(message_id, endpoint_id, "s1", "u1", {}, bodies)


def _bodies(store: SqlStore) -> set[int]:
    with store.engine.connect() as conn:
        return {int(i) for i in conn.execute(sa.select(t.outbox_bodies.c.outbox_id)).scalars()}


def _orphan_bodies(store: SqlStore) -> int:
    b, o = t.outbox_bodies, t.outbox
    query = (
        sa.select(sa.func.count()).select_from(b).where(~sa.exists().where(o.c.id == b.c.outbox_id))
    )
    with store.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


async def test_a_purge_batch_keeps_the_body_of_an_output_replayed_meanwhile(
    store: SqlStore,
) -> None:
    """The purge deletes only the ids it found, with its conditions checked again: an
    output replayed between the candidates' read and the delete stays, with its body."""
    mid = await store.accept_message(message())
    (item,) = await store.commit_turn(_turn(mid, [b'{"a":1}']))
    await store.record_attempt(item, AttemptResult(200, 1.0), status="delivered", attempts=1)
    cutoff = time.time() + 1
    with store.engine.connect() as conn:
        ids = housekeeping._candidates("outbox", cutoff, conn)
    assert ids == [item.outbox_id]
    with store.engine.begin() as conn:
        conn.execute(sa.update(t.outbox).values(status="pending", finished_at=None))
    deleted = await store._write(housekeeping._delete_batch, ("outbox", cutoff, ids))
    assert deleted == 0
    assert _bodies(store) == {item.outbox_id}


# -- the migration --------------------------------------------------------------------------

# Bodies whose bytes must survive the move: large, non-ASCII, quotes and backslashes,
# escaped control characters, and a tiny one.
BODIES = [
    LARGE_BODY,
    orjson.dumps({"text": "Grüße, 你好, 🙂 " * 3000, "q": '"\\'}),
    orjson.dumps({"text": "line\nbreak\ttab\u0000nul\u2028sep"}),
    b"{}",
]


def _seed_0013(conn: sa.Connection) -> dict[str, bytes]:
    """Outputs in every state, at schema 0013 (the body in the row); returns each
    delivery id's body."""
    stored: dict[str, bytes] = {}
    states = [("pending", None), ("delivered", 2.0), ("failed", 3.0)]
    for n, body in enumerate(BODIES * 3):
        status, finished = states[n % 3]
        delivery_id = f"msg_mig{n:04d}"
        conn.execute(
            sa.text(
                "INSERT INTO outbox (delivery_id, endpoint_id, session_id, message_id, body, "
                "status, attempts, not_before, created_at, finished_at, partition) VALUES "
                "(:d, 'ep-1', :s, NULL, :body, :status, :attempts, 0, 1, :finished, 7)"
            ),
            {
                "d": delivery_id,
                "s": f"s{n % 4}",
                "body": body.decode(),
                "status": status,
                "attempts": 0 if status == "pending" else 1,
                "finished": finished,
            },
        )
        stored[delivery_id] = body
    return stored


def _outbox_indexes(conn: sa.Connection) -> dict[str, tuple[Any, ...]]:
    """The outbox's indexes: columns, uniqueness and (partial) condition."""
    out = {}
    for ix in sa.inspect(conn).get_indexes("outbox"):
        options = ix.get("dialect_options", {})
        where = options.get("sqlite_where", options.get("postgresql_where"))
        out[str(ix["name"])] = (tuple(ix["column_names"]), ix["unique"], str(where))
    return out


def test_migration_0014_moves_every_body_byte_for_byte_and_back(db_url: str) -> None:
    """A database at 0013 with pending, delivered and failed outputs (bodies large,
    non-ASCII, with escapes) upgrades to 0014: every body is in ``outbox_bodies`` with the
    same bytes, the outbox rows have no body column, their other columns and every index
    (with its condition) are as they were. Downgrading to 0013 puts the same bytes back in
    the rows and drops the table; upgrading again moves them once more."""
    migrate.upgrade(db_url, "0013")
    engine = sa.create_engine(normalise_url(db_url))
    try:
        with engine.begin() as conn:
            stored = _seed_0013(conn)
            indexes = _outbox_indexes(conn)
            rows = _rows_without_body(conn)
        assert "ix_outbox_pending_head" in indexes

        migrate.upgrade(db_url, "0014")
        with engine.connect() as conn:
            assert _moved_bodies(conn) == stored
            assert "body" not in {c["name"] for c in sa.inspect(conn).get_columns("outbox")}
            assert _outbox_indexes(conn) == indexes
            assert _rows_without_body(conn) == rows

        command.downgrade(migrate.alembic_config(db_url), "0013")
        with engine.connect() as conn:
            assert not sa.inspect(conn).has_table("outbox_bodies")
            back = conn.execute(sa.text("SELECT delivery_id, body FROM outbox")).all()
            assert {str(d): str(b).encode() for d, b in back} == stored
            assert _outbox_indexes(conn) == indexes
            assert _rows_without_body(conn) == rows

        migrate.upgrade(db_url, "0014")
        with engine.connect() as conn:
            assert _moved_bodies(conn) == stored
    finally:
        engine.dispose()


def _moved_bodies(conn: sa.Connection) -> dict[str, bytes]:
    rows = conn.execute(
        sa.text(
            "SELECT o.delivery_id, b.body FROM outbox AS o "
            "JOIN outbox_bodies AS b ON b.outbox_id = o.id"
        )
    ).all()
    assert conn.execute(sa.text("SELECT count(*) FROM outbox_bodies")).scalar_one() == len(rows)
    return {str(d): str(b).encode() for d, b in rows}


def _rows_without_body(conn: sa.Connection) -> set[tuple[Any, ...]]:
    columns = (
        "id, delivery_id, endpoint_id, session_id, message_id, status, attempts, not_before, "
        "last_status, last_error, created_at, finished_at, replayed_at, partition"
    )
    return {tuple(r) for r in conn.execute(sa.text(f"SELECT {columns} FROM outbox"))}  # noqa: S608


async def test_the_delivery_reads_return_the_migrated_bodies(db_url: str) -> None:
    """After the migration the server reads the moved bodies: a pending output for its
    attempt (with its row and by id), any output with its delivery record."""
    migrate.upgrade(db_url, "0013")
    engine = sa.create_engine(normalise_url(db_url))
    try:
        with engine.begin() as conn:
            stored = _seed_0013(conn)
    finally:
        engine.dispose()
    migrate.upgrade(db_url)
    store = SqlStore(db_url)
    store.start()
    try:
        ds = DeliveryStore(store)
        pending = await store.pending_deliveries()
        assert pending
        assert all(p.body == stored[p.delivery_id] for p in pending)
        by_id = await ds.pending_by_ids([p.outbox_id for p in pending])
        assert [p.body for p in by_id] == [p.body for p in pending]
        for delivery_id, body in stored.items():
            record = await ds.get(delivery_id)
            assert record is not None
            assert record.body == body
        # New outputs after the migrated ones get their own bodies.
        with store.engine.begin() as conn:
            (new_id,) = insert_outputs(conn, [pending_output("msg_after", b'{"new":1}')])
        assert await ds.pending_body(new_id) == b'{"new":1}'
    finally:
        store.close()


async def test_outcomes_of_one_output_in_one_commit_apply_in_order(store: SqlStore) -> None:
    """A retry, then the delivery of the same output, written in one group commit: the
    output ends delivered after 2 attempts; a retry written after a delivery changes
    nothing (an output moves only from pending). On SQLite retries are a statement of
    their own (the status left alone), so the order across the two is checked here."""
    mid = await store.accept_message(message())
    a, b = await store.commit_turn(_turn(mid, [b'{"a":1}', b'{"a":2}']))
    later = time.time() + 60
    outcomes = [
        (a, AttemptResult(500, 1.0, "HTTP 500"), "pending", 1, later),
        (a, AttemptResult(200, 1.0), "delivered", 2, 0.0),
        (b, AttemptResult(200, 1.0), "delivered", 1, 0.0),
        (b, AttemptResult(500, 1.0, "HTTP 500"), "pending", 2, later),
    ]
    with store.engine.begin() as conn:
        OutcomeWriter(store.backend).record(conn, outcomes)
    o = t.outbox.c
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(o.id, o.status, o.attempts, o.last_status, o.finished_at).order_by(o.id)
        ).all()
    assert [(r.status, r.attempts, r.last_status) for r in rows] == [
        ("delivered", 2, 200),
        ("delivered", 1, 200),
    ]
    assert all(r.finished_at is not None for r in rows)
    assert len(await store.attempts_for(a.outbox_id)) == 2


async def test_each_output_of_a_large_commit_gets_its_own_body(store: SqlStore) -> None:
    """300 outputs of several turns committed together, each body different (quotes,
    backslashes, braces, non-ASCII): every outbox id is stored with its own turn's body,
    byte for byte (on PostgreSQL the rows and the bodies are one statement, the bodies
    matched to the rows' new ids by delivery id)."""
    turns = []
    for n in range(3):
        mid = await store.accept_message(message(session=f"s{n}"))
        bodies = [
            orjson.dumps({"n": n, "i": i, "text": f'"{{\\}}" ü {n}-{i} ' * (i % 7 + 1)})
            for i in range(100)
        ]
        turns.append((TurnCommit(mid, "ep-1", f"s{n}", "u1", {}, bodies), bodies))
    results = await asyncio.gather(*(store.commit_turn(turn) for turn, _ in turns))
    b = t.outbox_bodies.c
    with store.engine.connect() as conn:
        stored = {int(i): str(v).encode() for i, v in conn.execute(sa.select(b.outbox_id, b.body))}
    for (_turn_commit, bodies), outputs in zip(turns, results, strict=True):
        assert [stored[o.outbox_id] for o in outputs] == bodies
        assert [o.body for o in outputs] == bodies
    assert len(stored) == 300
