"""PostgreSQL: a group commit of accepts, turn commits and outcomes goes as two round
trips (one without turns) and gives every write the result it had statement by
statement; anything unusual still goes statement by statement."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, select

from flowhook.cluster import leases
from flowhook.cluster.partitions import PARTITIONS, partition_of
from flowhook.delivery.types import AttemptResult
from flowhook.storage import schema as t
from flowhook.storage.hotpath import Refusal, TurnRefused
from flowhook.storage.hotpath_together import CommitTogether
from flowhook.storage.pg_rounds import Rounds, literal
from flowhook.storage.records import TurnCommit
from flowhook.storage.store import SqlStore
from tests.support.messages import inbound

pytestmark = pytest.mark.postgres

# Texts a careless or hostile integrator may send, each to come back unchanged.
HOSTILE = [
    "it's",
    "back\\slash\\",
    "E'\\x41'",
    "50% of %s and %(name)s",
    "$1 $$ dollar $tag$ quoted $tag$",
    "'); DROP TABLE messages; --",
    "semi; colon; COMMIT; BEGIN",
    "Grüße 🎉 \u202e",
    "line\nbreak\ttab\r",
    "x" * 100_000,
]


class CountedRounds(Rounds):
    """Rounds that count the simple queries sent (one per round trip)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[int] = []

    def run(self, raw: Any, texts: Any) -> list[list[Any] | None]:
        self.sent.append(len(texts))
        return super().run(raw, texts)


def together(store: SqlStore) -> CommitTogether:
    fn = store.writer._together
    assert isinstance(fn, CommitTogether)
    return fn


def counted(store: SqlStore) -> CountedRounds:
    rounds = CountedRounds()
    together(store)._rounds = rounds
    return rounds


async def held_epochs(store: SqlStore) -> dict[int, int]:
    return await store.transact(lambda c: leases.claim(c, "w1", 30.0, PARTITIONS))


def turn(msg_id: int, session: str, epoch: int, text: str = "out") -> TurnCommit:
    return TurnCommit(
        message_id=msg_id,
        endpoint_id="ep-1",
        session_id=session,
        user_id="u1",
        state={"last": text},
        bodies=[f'{{"text": {literal_json(text)}}}'.encode()],
        epoch=epoch,
    )


def literal_json(text: str) -> str:
    import orjson

    return orjson.dumps(text).decode()


async def test_accepts_turns_and_outcomes_commit_in_two_round_trips(
    owned_store: SqlStore,
) -> None:
    """Writes of the three kinds submitted together commit in two simple queries: the
    new message gets its id, the turn its output, the outcome moves its output; a batch
    of accepts alone is one."""
    store = owned_store
    held = await held_epochs(store)
    first = await store.accept_message(inbound("s1", "one"))
    (earlier,) = await store.commit_turn(turn(first, "s1", held[partition_of("ep-1", "s1")]))
    second = await store.accept_message(inbound("s2", "two"))
    rounds = counted(store)
    new_id, outputs, _ = await asyncio.gather(
        store.accept_message(inbound("s3", "three")),
        store.commit_turn(turn(second, "s2", held[partition_of("ep-1", "s2")])),
        store.record_attempt(earlier, AttemptResult(200, 1.0), status="delivered", attempts=1),
    )
    assert rounds.sent == [4, 2]  # BEGIN, accept, fence, outcomes; turn rows, COMMIT
    assert new_id > second
    assert len(outputs) == 1
    statuses = await store._read(
        lambda c: dict(c.execute(select(t.outbox.c.id, t.outbox.c.status)).all())
    )
    assert statuses == {earlier.outbox_id: "delivered", outputs[0].outbox_id: "pending"}
    assert [m.id for m in await store.pending_messages()] == [new_id]
    await store.accept_message(inbound("s4", "four"))
    assert rounds.sent[2:] == [3]  # BEGIN, accept, COMMIT


async def test_hostile_text_comes_back_unchanged(owned_store: SqlStore) -> None:
    """Quotes, backslashes, percent signs, dollar quotes, statement separators, unicode
    and a 100 KB text, written into the statements as literals, are stored as sent: as
    the message, its transcript-free turn output and the session state."""
    store = owned_store
    held = await held_epochs(store)
    ids = await asyncio.gather(
        *(
            store.accept_message(dataclasses.replace(inbound(f"s{i}"), text=text))
            for i, text in enumerate(HOSTILE)
        )
    )
    pending = {m.id: m.text for m in await store.pending_messages()}
    assert [pending[i] for i in ids] == HOSTILE
    results = await asyncio.gather(
        *(
            store.commit_turn(turn(i, f"s{n}", held[partition_of("ep-1", f"s{n}")], text))
            for n, (i, text) in enumerate(zip(ids, HOSTILE, strict=True))
        )
    )
    assert all(
        literal_json(text).encode() in r[0].body for r, text in zip(results, HOSTILE, strict=True)
    )
    states = await store.load_sessions([("ep-1", f"s{n}") for n in range(len(HOSTILE))])
    assert [states[("ep-1", f"s{n}")]["last"] for n in range(len(HOSTILE))] == HOSTILE
    assert together(store).commits >= 2


async def test_a_refused_turn_writes_nothing_and_the_rest_commit(owned_store: SqlStore) -> None:
    """In a batch sent together, a turn whose lease epoch is stale and a turn of a message
    already processed are refused and leave no row; the other turn and the accept of the
    same commit are stored."""
    store = owned_store
    held = await held_epochs(store)
    done = await store.accept_message(inbound("a", "1"))
    await store.commit_turn(turn(done, "a", held[partition_of("ep-1", "a")]))
    b = await store.accept_message(inbound("b", "2"))
    c = await store.accept_message(inbound("c", "3"))
    rounds = counted(store)
    results = await asyncio.gather(
        store.commit_turn(turn(done, "a", held[partition_of("ep-1", "a")])),
        store.commit_turn(turn(b, "b", held[partition_of("ep-1", "b")] + 7)),
        store.commit_turn(turn(c, "c", held[partition_of("ep-1", "c")])),
        store.accept_message(inbound("d", "4")),
        return_exceptions=True,
    )
    assert rounds.sent[0] == 3  # BEGIN, accept, fence: the batch went together
    assert isinstance(results[0], TurnRefused)
    assert results[0].refusal is Refusal.ALREADY_PROCESSED
    assert isinstance(results[1], TurnRefused)
    assert results[1].refusal is Refusal.LEASE_LOST
    assert isinstance(results[2], list)
    assert len(results[2]) == 1

    def sessions(conn: Connection) -> dict[str, int]:
        rows = conn.execute(select(t.sessions.c.session_id, t.sessions.c.turns)).all()
        return {str(s): int(n) for s, n in rows}

    assert await store._read(sessions) == {"a": 1, "c": 1}
    assert sorted(str(m.text) for m in await store.pending_messages()) == ["2", "4"]


async def test_a_bad_write_fails_alone_and_the_connection_stays_usable(
    owned_store: SqlStore,
) -> None:
    """A text PostgreSQL cannot store (a NUL character) fails its own write only: the
    writes sent with it commit when retried one by one, and the next batch goes together
    again."""
    store = owned_store
    bad = dataclasses.replace(inbound("s1", "x"), text="nul\x00char")
    results = await asyncio.gather(
        store.accept_message(bad),
        store.accept_message(inbound("s2", "fine")),
        return_exceptions=True,
    )
    assert isinstance(results[0], Exception)
    assert isinstance(results[1], int)
    before = together(store).commits
    assert await store.accept_message(inbound("s3", "after")) > results[1]
    assert together(store).commits == before + 1
    assert sorted(str(m.text) for m in await store.pending_messages()) == ["after", "fine"]


async def test_prepared_statements_lost_under_the_writer_are_prepared_again(
    owned_store: SqlStore,
) -> None:
    """If the connection's prepared statements vanish (a pooler reset it), the batch that
    finds out fails over to one-by-one writes, which prepare again: nothing is lost."""
    store = owned_store
    await store.accept_message(inbound("s1", "one"))  # prepares them

    def deallocate(conn: Connection, args: Any) -> list[None]:
        conn.connection.driver_connection.execute("DEALLOCATE ALL")  # type: ignore[union-attr]
        return [None for _ in args]

    await store._write(deallocate, None)
    again = await store.accept_message(inbound("s2", "two"))
    assert again > 0
    assert sorted(str(m.text) for m in await store.pending_messages()) == ["one", "two"]


async def test_a_turn_with_a_profile_goes_statement_by_statement(owned_store: SqlStore) -> None:
    """A turn that writes a profile is not sent together (its profile check sits between
    the fence and the rows): the writer commits it the usual way."""
    store = owned_store
    held = await held_epochs(store)
    msg = await store.accept_message(inbound("s1", "one"))
    before = together(store).commits
    profiled = dataclasses.replace(
        turn(msg, "s1", held[partition_of("ep-1", "s1")]),
        profile={"name": "Ann"},
        profile_version=0,
    )
    assert len(await store.commit_turn(profiled)) == 1
    assert together(store).commits == before
    assert await store.load_profile("ep-1", "u1") == {"name": "Ann"}


def server() -> psycopg.Connection[tuple[Any, ...]]:
    from tests.support import postgres

    try:
        return psycopg.connect(postgres.admin_url(), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        postgres.unavailable(str(exc))
        raise


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.characters(blacklist_characters="\x00", codec="utf-8")))
def test_a_literal_reads_back_as_the_string_it_was_made_of(text: str) -> None:
    """Any text without NUL, written as a literal into a simple query, is read back by
    PostgreSQL as exactly that text, whatever standard_conforming_strings says."""
    with server() as conn:
        for conforming in ("on", "off"):
            conn.execute(f"SET standard_conforming_strings = {conforming}")
            row = conn.execute(f"SELECT {literal(text)}::text".encode()).fetchone()
            assert row is not None
            assert row[0] == text


async def test_without_prepared_statements_batches_still_go_together(
    postgres_database: str,
) -> None:
    """With prepared statements off (a pooler that cannot keep them), the statements are
    sent whole and planned each time: the batch still goes together and still commits."""
    from flowhook.storage import migrate
    from tests.support import postgres

    postgres.reset_schema(postgres_database)
    migrate.upgrade(postgres_database)
    store = SqlStore(postgres_database, owner="w1", prepare=False)
    store.start()
    try:
        held = await held_epochs(store)
        first = await store.accept_message(inbound("s1", "one"))
        results = await asyncio.gather(
            store.commit_turn(turn(first, "s1", held[partition_of("ep-1", "s1")])),
            store.accept_message(inbound("s2", "two")),
        )
        assert len(results[0]) == 1
        assert [m.text for m in await store.pending_messages()] == ["two"]
        assert together(store).commits == 2
        assert together(store)._accept.name is None
    finally:
        store.close()
