"""Turn commits that must not happen are refused by the database: a message processed
twice (both backends) and, with several processes on PostgreSQL, a turn run under a
partition lease the process no longer holds. Also the lease claims themselves."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest
from sqlalchemy import Connection, select, update

from flowhook.cluster import leases
from flowhook.cluster.partitions import PARTITIONS, partition_of
from flowhook.delivery.types import AttemptResult
from flowhook.storage import schema as t
from flowhook.storage.hotpath import Refusal, TurnRefused
from flowhook.storage.records import TurnCommit
from flowhook.storage.store import SqlStore
from tests.support.messages import inbound as message

LEASE = 30.0


def turn(msg_id: int, session: str = "s1", *, epoch: int = 0) -> TurnCommit:
    return TurnCommit(
        message_id=msg_id,
        endpoint_id="ep-1",
        session_id=session,
        user_id="u1",
        state={"n": msg_id},
        bodies=[b'{"out": 1}'],
        epoch=epoch,
    )


def worker(worker_id: str) -> leases.Worker:
    return leases.Worker(worker_id, "both", "test-host", 1, time.time())


def session_rows(conn: Connection) -> list[tuple[str, int]]:
    rows = conn.execute(select(t.sessions.c.session_id, t.sessions.c.turns)).all()
    return [(str(r[0]), int(r[1])) for r in rows]


async def test_a_message_processed_once_cannot_commit_a_second_turn(store: SqlStore) -> None:
    """Committing a turn for a message that an earlier turn already processed is refused
    as a whole: no second session update, no second output."""
    msg_id = await store.accept_message(message())
    first = await store.commit_turn(turn(msg_id))
    assert len(first) == 1
    with pytest.raises(TurnRefused) as refused:
        await store.commit_turn(turn(msg_id))
    assert refused.value.refusal is Refusal.ALREADY_PROCESSED
    assert await store._read(session_rows) == [("s1", 1)]
    assert len(await store.pending_deliveries()) == 1


async def test_a_refused_turn_does_not_spoil_the_others_of_its_batch(store: SqlStore) -> None:
    """Turns submitted together (sharing a group commit when the writer takes them at once)
    are judged one by one: the duplicate is refused, the other commits."""
    a = await store.accept_message(message("a", "1"))
    b = await store.accept_message(message("b", "2"))
    await store.commit_turn(turn(a, "a"))
    results = await asyncio.gather(
        store.commit_turn(turn(a, "a")), store.commit_turn(turn(b, "b")), return_exceptions=True
    )
    assert isinstance(results[0], TurnRefused)
    assert isinstance(results[1], list)
    assert len(results[1]) == 1
    assert sorted(await store._read(session_rows)) == [("a", 1), ("b", 1)]


async def test_a_late_outcome_never_turns_a_delivered_output_pending(store: SqlStore) -> None:
    """An outcome recorded after another one settled the output (a process that lost the
    session mid-POST) does not move a delivered output back to pending."""
    msg_id = await store.accept_message(message())
    (item,) = await store.commit_turn(turn(msg_id))
    ok = AttemptResult(200, 3.0)
    await store.record_attempt(item, ok, status="delivered", attempts=1)
    late = AttemptResult(503, 3.0, error="HTTP 503")
    await store.record_attempt(item, late, status="pending", attempts=1, not_before=1e12)
    assert await store.pending_deliveries() == []


@pytest.mark.postgres
async def test_a_turn_under_a_lease_taken_over_is_refused(owned_store: SqlStore) -> None:
    """A worker commits turns only while it holds the session's partition lease with the
    epoch the turn started under: after a takeover (new owner, new epoch) its commit is
    refused, nothing of the turn is written, and the message stays pending for the new
    owner."""
    store = owned_store
    part = partition_of("ep-1", "s1")
    held = await store.transact(lambda c: leases.claim(c, "w1", LEASE, PARTITIONS))
    assert len(held) == PARTITIONS
    first = await store.accept_message(message(text="1"))
    await store.commit_turn(turn(first, epoch=held[part]))

    def take_over(conn: Connection) -> None:
        conn.execute(
            update(t.partition_leases)
            .where(t.partition_leases.c.partition == part)
            .values(owner="w2", epoch=t.partition_leases.c.epoch + 1)
        )

    await store.transact(take_over)
    second = await store.accept_message(message(text="2"))
    with pytest.raises(TurnRefused) as refused:
        await store.commit_turn(turn(second, epoch=held[part]))
    assert refused.value.refusal is Refusal.LEASE_LOST
    assert [m.id for m in await store.pending_messages()] == [second]
    assert await store._read(session_rows) == [("s1", 1)]
    assert len(await store.pending_deliveries()) == 1


@pytest.mark.postgres
async def test_an_expired_lease_fences_until_renewed(owned_store: SqlStore) -> None:
    """A lease past its expiry fences commits even if nobody took it over yet; once the
    same worker renews it (same epoch: nobody else held it), its turns commit again."""
    store = owned_store
    part = partition_of("ep-1", "s1")
    held = await store.transact(lambda c: leases.claim(c, "w1", LEASE, PARTITIONS))

    def expire(conn: Connection) -> None:
        conn.execute(update(t.partition_leases).values(expires_at=0))

    await store.transact(expire)
    msg_id = await store.accept_message(message())
    with pytest.raises(TurnRefused):
        await store.commit_turn(turn(msg_id, epoch=held[part]))
    tick = await store.transact(lambda c: leases.heartbeat(c, worker("w1"), LEASE, list(held)))
    assert tick.held[part] == held[part]
    assert len(await store.commit_turn(turn(msg_id, epoch=held[part]))) == 1


@pytest.mark.postgres
async def test_claims_split_free_partitions_and_leave_held_ones_alone(
    owned_store: SqlStore,
) -> None:
    """Two workers claiming at the same time get disjoint partitions (SKIP LOCKED); a
    claim never takes a partition whose lease is valid; an expired one is taken over with
    a new epoch."""
    store = owned_store
    claims = await asyncio.gather(
        store.transact(lambda c: leases.claim(c, "w1", LEASE, 150)),
        store.transact(lambda c: leases.claim(c, "w2", LEASE, 150)),
    )
    assert not set(claims[0]) & set(claims[1])
    assert len(claims[0]) + len(claims[1]) == PARTITIONS
    assert await store.transact(lambda c: leases.claim(c, "w3", LEASE, PARTITIONS)) == {}
    victim = next(iter(claims[1]))

    def expire(conn: Connection) -> None:
        conn.execute(
            update(t.partition_leases)
            .where(t.partition_leases.c.partition == victim)
            .values(expires_at=0)
        )

    await store.transact(expire)
    taken = await store.transact(lambda c: leases.claim(c, "w3", LEASE, PARTITIONS))
    assert taken == {victim: claims[1][victim] + 1}
    keep = list(claims[1])
    tick = await store.transact(lambda c: leases.heartbeat(c, worker("w2"), LEASE, keep))
    assert victim not in tick.held
    assert len(tick.held) == len(claims[1]) - 1
    assert tick.live_workers == 1  # only w2 heartbeated


@pytest.mark.postgres
async def test_a_turn_that_read_an_outdated_profile_is_refused(owned_store: SqlStore) -> None:
    """With several processes, a user's sessions may run in different processes: a turn
    whose flow read version N of the user's profile commits only if the profile is still
    at version N (then N+1); otherwise it is refused and nothing of it is written."""
    store = owned_store
    part = partition_of("ep-1", "s1")
    held = await store.transact(lambda c: leases.claim(c, "w1", LEASE, PARTITIONS))
    first = await store.accept_message(message(text="1"))
    created = dataclasses.replace(
        turn(first, epoch=held[part]), profile={"visits": 1}, profile_version=0
    )
    await store.commit_turn(created)
    assert await store.load_profile_versioned("ep-1", "u1") == ({"visits": 1}, 1)

    second = await store.accept_message(message(text="2"))
    stale = dataclasses.replace(
        turn(second, epoch=held[part]), profile={"visits": 99}, profile_version=0
    )
    with pytest.raises(TurnRefused) as refused:
        await store.commit_turn(stale)
    assert refused.value.refusal is Refusal.PROFILE_CHANGED
    assert await store.load_profile_versioned("ep-1", "u1") == ({"visits": 1}, 1)
    assert [m.id for m in await store.pending_messages()] == [second]

    fresh = dataclasses.replace(stale, profile={"visits": 2}, profile_version=1)
    await store.commit_turn(fresh)
    assert await store.load_profile_versioned("ep-1", "u1") == ({"visits": 2}, 2)


@pytest.mark.postgres
async def test_a_stalled_worker_in_a_transaction_is_ended_so_its_partitions_move(
    owned_store: SqlStore, postgres_database: str
) -> None:
    """A worker frozen in the middle of a transaction holds row locks on its leases (and
    rows it wrote): claims skip locked rows, so its partitions could never move. Once its
    leases expired, a claiming worker ends that worker's database sessions; the locks go
    with them and the partitions are claimed."""
    import psycopg

    store = owned_store
    await store.transact(lambda c: leases.claim(c, "w2", LEASE, PARTITIONS))

    def expire(conn: Connection) -> None:
        conn.execute(update(t.partition_leases).values(expires_at=0))

    await store.transact(expire)  # w2 stopped renewing...
    # ...in the middle of a turn commit, which holds its lease row locked.
    frozen = psycopg.connect(postgres_database, application_name="flowhook:w2")
    frozen.execute("SELECT 1 FROM partition_leases WHERE partition = 5 FOR SHARE")
    first = await store.transact(lambda c: leases.claim(c, "w1", LEASE, PARTITIONS))
    assert len(first) == PARTITIONS - 1
    assert 5 not in first
    assert await store.transact(lambda c: leases.end_stalled_sessions(c, "w1")) == 1
    with pytest.raises(psycopg.OperationalError):
        frozen.execute("SELECT 1")
    frozen.close()
    for _ in range(50):  # the ended session's locks go as its backend exits
        second = await store.transact(lambda c: leases.claim(c, "w1", LEASE, PARTITIONS))
        if second:
            break
        await asyncio.sleep(0.05)
    assert set(second) == {5}


@pytest.mark.postgres
async def test_the_writer_outlives_its_connection_being_ended(
    owned_store: SqlStore, postgres_database: str
) -> None:
    """The database ends the writer's connection (a restart, a terminated backend): the
    next write opens a new connection and commits; nothing stays broken."""
    import psycopg

    store = owned_store
    await store.accept_message(message(text="before"))
    with psycopg.connect(postgres_database, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    after = await asyncio.wait_for(store.accept_message(message(text="after")), 10)
    assert [m.id for m in await store.pending_messages()][-1] == after
    assert len(await store.pending_messages()) == 2


async def test_a_reply_announced_before_the_request_waits_is_not_lost(store: SqlStore) -> None:
    """With several processes, the notification that a rest turn's outputs are stored may
    arrive before the accepting request registered its wait: the wait still resolves,
    with the stored outputs."""
    from flowhook.sessions.replies import Replies

    msg_id = await store.accept_message(message())
    outputs = [{"text": "You said: hi", "data": {}}]
    await store.commit_turn(dataclasses.replace(turn(msg_id), bodies=[], reply=outputs))
    replies = Replies(store)
    replies.on_notify(str(msg_id))
    assert await asyncio.wait_for(replies.expect(msg_id), 5) == outputs


@pytest.mark.postgres
async def test_an_incremental_scan_misses_no_message_that_committed_late(
    owned_store: SqlStore, postgres_database: str
) -> None:
    """Owners read only what may have committed since their last read. A message whose
    accepting transaction took its id early but committed after that read (another
    process, slow) is still found; a message seen before is read again only if the read's
    mark says it may have committed after it."""
    import psycopg

    store = owned_store
    part = partition_of("ep-1", "s1")
    first = await store.accept_message(message(text="1"))
    slow = psycopg.connect(postgres_database)
    late = slow.execute(
        "INSERT INTO messages (endpoint_id, session_id, user_id, trace_id, received_at, kind, "
        "partition, status, txid) VALUES ('ep-1', 's1', 'u1', 't-late', 0, 'message', %s, "
        "'pending', pg_current_xact_id()::text::bigint) RETURNING id",
        (part,),
    ).fetchone()
    assert late is not None
    third = await store.accept_message(message(text="3"))
    ids, mark = await store.pending_message_ids([part], 100)
    assert ids == [first, third]
    assert mark is not None
    slow.commit()
    slow.close()
    again, _ = await store.pending_message_ids([part], 100, since=mark)
    assert late[0] in again
    with psycopg.connect(postgres_database) as conn:
        row = conn.execute("SELECT txid FROM messages WHERE id = %s", (first,)).fetchone()
    assert row is not None
    # Read again only if it may have committed after the mark: a transaction open anywhere
    # on the server (another test's database) holds the mark's xmin back.
    assert (first in again) == (row[0] >= mark.xmin)
