"""Storage acceptance tests: the same behaviour on SQLite and on real PostgreSQL."""

from __future__ import annotations

import asyncio
import time

import pytest

from flowhook.delivery.types import AttemptResult
from flowhook.errors import Conflict
from flowhook.storage import migrate
from flowhook.storage.records import ApiKeyRecord, EndpointRecord, InboundMessage, TurnCommit
from flowhook.storage.store import SqlStore


def endpoint(name: str = "support", token: str = "tok-1", eid: str = "ep-1") -> EndpointRecord:
    now = time.time()
    return EndpointRecord(
        id=eid,
        name=name,
        flow="echo",
        url_token=token,
        auth_method="none",
        webhook_url="http://127.0.0.1:9/hook",
        webhook_user="bot",
        webhook_password="s3cret",
        locale=None,
        active=True,
        created_at=now,
        updated_at=now,
    )


def message(session: str = "s1", text: str = "hi", eid: str = "ep-1") -> InboundMessage:
    return InboundMessage(
        endpoint_id=eid,
        session_id=session,
        user_id="u1",
        trace_id="t-" + text,
        text=text,
        data={"k": [1, 2]},
        received_at=time.time(),
    )


async def test_upgrade_is_idempotent(db_url: str) -> None:
    """Running the migrations twice leaves the schema at head without error."""
    migrate.upgrade(db_url)
    migrate.upgrade(db_url)
    assert migrate.current(db_url) == "0012"


async def test_endpoint_round_trip(store: SqlStore) -> None:
    """An endpoint is found by id and by URL token, listed, updated and deleted."""
    rec = endpoint()
    await store.create_endpoint(rec)
    assert await store.get_endpoint("ep-1") == rec
    assert await store.get_endpoint_by_token("tok-1") == rec
    assert [e.id for e in await store.list_endpoints()] == ["ep-1"]
    updated = await store.update_endpoint("ep-1", {"flow": "order-help", "active": False})
    assert updated is not None
    assert (updated.flow, updated.active, updated.name) == ("order-help", False, "support")
    assert await store.update_endpoint("missing", {"flow": "x"}) is None
    assert await store.delete_endpoint("ep-1") is True
    assert await store.delete_endpoint("ep-1") is False
    assert await store.get_endpoint_by_token("tok-1") is None


async def test_duplicate_name_is_a_conflict_and_fails_alone(store: SqlStore) -> None:
    """A name clash raises Conflict, while writes committed in the same group still succeed."""
    await store.create_endpoint(endpoint())
    results = await asyncio.gather(
        store.create_endpoint(endpoint(token="tok-2", eid="ep-2")),
        store.accept_message(message(text="a")),
        store.accept_message(message(text="b")),
        return_exceptions=True,
    )
    assert isinstance(results[0], Conflict)
    assert results[0].details["field"] == "name"
    assert [type(r) for r in results[1:]] == [int, int]
    assert [m.text for m in await store.pending_messages()] == ["a", "b"]
    await store.create_endpoint(endpoint(name="other", token="tok-3", eid="ep-3"))
    with pytest.raises(Conflict):
        await store.update_endpoint("ep-3", {"name": "support"})


async def test_api_keys_listed_revoked_and_removed_with_endpoint(store: SqlStore) -> None:
    """Keys are listed per endpoint in creation order, revoked one by one, and go with their endpoint."""
    await store.create_endpoint(endpoint())
    for i in range(2):
        await store.create_api_key(
            ApiKeyRecord(f"k{i}", "ep-1", f"key {i}", f"{i:064d}", "fhk_abcd", time.time() + i)
        )
    assert [k.id for k in await store.list_api_keys("ep-1")] == ["k0", "k1"]
    assert await store.delete_api_key("ep-1", "k0") is True
    assert await store.delete_api_key("other-endpoint", "k1") is False
    assert [k.id for k in await store.list_api_keys("ep-1")] == ["k1"]
    await store.delete_endpoint("ep-1")
    assert await store.list_api_keys("ep-1") == []


async def test_turn_commit_moves_message_state_and_outputs_together(store: SqlStore) -> None:
    """A turn marks its message done, saves the session and appends its outputs in order."""
    mid = await store.accept_message(message())
    pending = await store.pending_messages()
    assert [(m.id, m.text, m.data) for m in pending] == [(mid, "hi", {"k": [1, 2]})]
    deliveries = await store.commit_turn(
        TurnCommit(mid, "ep-1", "s1", "u1", {"context": {"n": 1}}, [b'{"a":1}', b'{"a":2}'])
    )
    assert [d.body for d in deliveries] == [b'{"a":1}', b'{"a":2}']
    assert deliveries[0].seq < deliveries[1].seq
    assert deliveries[0].delivery_id != deliveries[1].delivery_id
    assert await store.pending_messages() == []
    assert await store.load_session("ep-1", "s1") == {"context": {"n": 1}}
    await store.commit_turn(TurnCommit(0, "ep-1", "s1", "u1", {"context": {"n": 2}}))
    assert await store.load_session("ep-1", "s1") == {"context": {"n": 2}}
    owed = await store.pending_deliveries()
    assert [d.outbox_id for d in owed] == [d.outbox_id for d in deliveries]


async def test_attempts_are_logged_and_outcomes_recorded(store: SqlStore) -> None:
    """Each attempt is logged; retry keeps the output pending, delivery and failure finish it."""
    mid = await store.accept_message(message())
    a, b = await store.commit_turn(TurnCommit(mid, "ep-1", "s1", "u1", {}, [b"{}", b"[]"]))
    await store.record_attempt(
        a,
        AttemptResult(500, 3.0, "HTTP 500", body_excerpt="oops"),
        status="pending",
        attempts=1,
        not_before=time.time() + 60,
    )
    owed = await store.pending_deliveries()
    assert [(d.outbox_id, d.attempts) for d in owed] == [(a.outbox_id, 1), (b.outbox_id, 0)]
    assert owed[0].not_before > time.time()
    await store.record_attempt(a, AttemptResult(200, 2.0), status="delivered", attempts=2)
    await store.record_attempt(b, AttemptResult(None, 1.0, "timeout"), status="failed", attempts=1)
    assert await store.pending_deliveries() == []
    assert await store.delivery_counts() == {"delivered": 1, "failed": 1}
    log = await store.attempts_for(a.outbox_id)
    assert [(x["status"], x["error"], x["body_excerpt"]) for x in log] == [
        (500, "HTTP 500", "oops"),
        (200, None, None),
    ]


async def test_concurrent_writes_share_commits(store: SqlStore) -> None:
    """Many concurrent accepts are all durable, in fewer transactions than writes (group commit)."""
    ids = await asyncio.gather(*(store.accept_message(message(text=str(i))) for i in range(300)))
    assert len(set(ids)) == 300
    assert len(await store.pending_messages(limit=1000)) == 300
    assert store.writer.commits < store.writer.writes


async def test_profiles_are_saved_with_the_turn_and_kept_per_endpoint(store: SqlStore) -> None:
    """A turn's profile is stored in its transaction, replaced by later turns, and kept per
    endpoint and user; a turn without a profile change leaves it as it was."""
    assert await store.load_profile("ep-1", "u1") is None
    await store.commit_turn(TurnCommit(0, "ep-1", "s1", "u1", {}, profile={"a": 1}))
    await store.commit_turn(TurnCommit(0, "ep-1", "s2", "u1", {}, profile={"a": 2, "b": [1]}))
    await store.commit_turn(TurnCommit(0, "ep-1", "s3", "u1", {}))
    assert await store.load_profile("ep-1", "u1") == {"a": 2, "b": [1]}
    assert await store.load_profile("ep-2", "u1") is None


async def test_history_purge_keeps_pending_work_and_recent_history(store: SqlStore) -> None:
    """Finished messages, outputs and attempts older than the cutoff are deleted; pending
    work of any age and everything newer than the cutoff stay."""
    from flowhook.storage import housekeeping

    done_id = await store.accept_message(message(text="old"))
    pending_id = await store.accept_message(message(session="s2", text="waiting"))
    (old_out,) = await store.commit_turn(TurnCommit(done_id, "ep-1", "s1", "u1", {}, [b"{}"]))
    (owed,) = await store.commit_turn(TurnCommit(0, "ep-1", "s3", "u1", {}, [b"[]"]))
    await store.record_attempt(old_out, AttemptResult(200, 1.0), status="delivered", attempts=1)
    # A cutoff an hour ago: everything is recent, nothing goes.
    assert await housekeeping.purge_history(store, time.time() - 3600) == {
        "messages": 0,
        "outbox": 0,
        "attempts": 0,
    }
    assert len(await store.attempts_for(old_out.outbox_id)) == 1
    cutoff = time.time() + 1  # everything finished so far counts as old
    assert await housekeeping.purge_history(store, cutoff) == {
        "messages": 1,
        "outbox": 1,
        "attempts": 1,
    }
    assert [m.id for m in await store.pending_messages()] == [pending_id]
    assert [d.outbox_id for d in await store.pending_deliveries()] == [owed.outbox_id]


async def test_turn_statistics_are_purged_after_their_own_retention(store: SqlStore) -> None:
    """Turn statistics (the analytics source) older than the analytics cutoff are deleted,
    newer ones stay; without that cutoff none are."""
    from flowhook.storage import housekeeping
    from flowhook.storage.records import TurnStats

    stats = TurnStats(turn_ms=3.0, intent=None, handover=False, outputs=1)
    await store.commit_turn(TurnCommit(0, "ep-1", "s1", "u1", {}, stats=stats))
    await store.commit_turn(TurnCommit(0, "ep-1", "s2", "u1", {}, stats=stats))
    now = time.time()
    assert (await housekeeping.purge_history(store, now - 3600))["messages"] == 0
    assert "turn_stats" not in await housekeeping.purge_history(store, now - 3600)
    assert (await housekeeping.purge_history(store, now - 3600, now - 3600))["turn_stats"] == 0
    assert (await housekeeping.purge_history(store, now - 3600, now + 1))["turn_stats"] == 2
