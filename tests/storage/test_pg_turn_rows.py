"""PostgreSQL: a group commit's turns write their sessions, transcripts, statistics and
outputs in one statement, and a batch with a session twice still writes each turn."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import orjson
import pytest
from sqlalchemy import select

from flowhook.storage import migrate
from flowhook.storage import schema as t
from flowhook.storage.records import InboundMessage, TranscriptEntry, TurnCommit, TurnStats
from flowhook.storage.store import SqlStore

pytestmark = pytest.mark.postgres


@pytest.fixture
async def pg_store(postgres_database: str) -> AsyncIterator[SqlStore]:
    """A single process's store on a fresh PostgreSQL schema (no fence)."""
    from tests.support import postgres

    postgres.reset_schema(postgres_database)
    migrate.upgrade(postgres_database)
    s = SqlStore(postgres_database)
    s.start()
    yield s
    s.close()


async def accepted(store: SqlStore, session: str, text: str) -> int:
    return await store.accept_message(
        InboundMessage("ep-1", session, "u-" + session, "t-" + text, text, None, time.time())
    )


def turn_of(message_id: int, session: str, text: str, outputs: int) -> TurnCommit:
    return TurnCommit(
        message_id=message_id,
        endpoint_id="ep-1",
        session_id=session,
        user_id="u-" + session,
        state={"last": text},
        bodies=[f'{{"text": "{text} {i}"}}'.encode() for i in range(outputs)],
        transcript=[
            TranscriptEntry("in", "user", text, None, "t-" + text),
            TranscriptEntry("out", "bot", text.upper(), {"k": [1, "two"]}, "t-" + text),
        ],
        stats=TurnStats(turn_ms=1.5, intent="greet", handover=False, outputs=outputs),
    )


async def test_turns_of_distinct_sessions_write_every_row_and_return_their_outputs(
    pg_store: SqlStore,
) -> None:
    """Three turns committed together: each session holds its state, each turn its two
    transcript rows and its statistics row, and each output returned names the outbox row
    that holds its body."""
    texts = {"s1": "hello", "s2": 'quote " and \\ slash', "s3": "no outputs"}
    ids = {s: await accepted(pg_store, s, x) for s, x in texts.items()}
    outputs = {"s1": 2, "s2": 1, "s3": 0}
    results = await asyncio.gather(
        *(pg_store.commit_turn(turn_of(ids[s], s, texts[s], outputs[s])) for s in texts)
    )
    assert [len(r) for r in results] == [2, 1, 0]
    with pg_store.engine.connect() as conn:
        sessions = dict(conn.execute(select(t.sessions.c.session_id, t.sessions.c.state)).all())
        transcripts = conn.execute(
            select(
                t.transcripts.c.session_id, t.transcripts.c.direction, t.transcripts.c.text
            ).order_by(t.transcripts.c.id)
        ).all()
        stats = conn.execute(select(t.turn_stats.c.session_id, t.turn_stats.c.outputs)).all()
        bodies = dict(
            conn.execute(select(t.outbox_bodies.c.outbox_id, t.outbox_bodies.c.body)).all()
        )
        status = dict(conn.execute(select(t.messages.c.id, t.messages.c.status)).all())
    assert {s: orjson.loads(v) for s, v in sessions.items()} == {
        s: {"last": x} for s, x in texts.items()
    }
    assert sorted((s, d, x) for s, d, x in transcripts) == sorted(
        [(s, "in", x) for s, x in texts.items()] + [(s, "out", x.upper()) for s, x in texts.items()]
    )
    assert sorted(stats) == sorted(outputs.items())
    for session, delivered in zip(texts, results, strict=True):
        for i, item in enumerate(delivered):
            assert bodies[item.outbox_id] == item.body.decode()
            assert item.body == f'{{"text": "{texts[session]} {i}"}}'.encode()
    assert set(status.values()) == {"done"}


async def test_two_turns_of_one_session_in_one_batch_each_count(pg_store: SqlStore) -> None:
    """A batch holding two turns of one session (whose rows one statement could not both
    upsert) still writes both: the session counts two turns and keeps the later state."""
    first = await accepted(pg_store, "s1", "one")
    second = await accepted(pg_store, "s1", "two")
    await asyncio.gather(
        pg_store.commit_turn(turn_of(first, "s1", "one", 1)),
        pg_store.commit_turn(turn_of(second, "s1", "two", 1)),
    )
    with pg_store.engine.connect() as conn:
        (row,) = conn.execute(select(t.sessions.c.turns, t.sessions.c.state)).all()
        outputs = conn.execute(select(t.outbox.c.id)).all()
        transcripts = conn.execute(select(t.transcripts.c.id)).all()
    assert row[0] == 2
    assert "two" in row[1]
    assert len(outputs) == 2
    assert len(transcripts) == 4
