"""Many sessions' stored states in one read, on SQLite and on real PostgreSQL."""

from __future__ import annotations

from flowhook.storage.records import TurnCommit
from flowhook.storage.store import SESSIONS_PER_READ, SqlStore

# Ids a careless or hostile integrator may send: quotes, SQL, wildcards, unicode, long.
ODD_IDS = [
    "plain",
    "it's",
    'say "hi"',
    "x'); DROP TABLE sessions; --",
    "100%_done",
    "a,b",
    "Grüße 🎉",
    "\u202eright-to-left",
    "s" * 4_000,
    " leading and trailing ",
]


async def store_state(store: SqlStore, endpoint_id: str, session_id: str, n: int) -> None:
    await store.commit_turn(TurnCommit(0, endpoint_id, session_id, "u1", {"context": {"n": n}}))


async def test_the_states_of_many_sessions_come_back_by_key(store: SqlStore) -> None:
    """Each stored session's state comes back under its own (endpoint, session) key, the
    same id on another endpoint keeps its own state, and sessions never stored are absent."""
    for i, session_id in enumerate(ODD_IDS):
        await store_state(store, "ep-1", session_id, i)
    await store_state(store, "ep-2", "plain", 99)
    keys = [("ep-1", s) for s in ODD_IDS] + [("ep-2", "plain"), ("ep-2", "it's"), ("ep-3", "x")]
    found = await store.load_sessions(keys)
    expected = {("ep-1", s): {"context": {"n": i}} for i, s in enumerate(ODD_IDS)}
    expected[("ep-2", "plain")] = {"context": {"n": 99}}
    assert found == expected
    for (endpoint_id, session_id), state in expected.items():
        assert await store.load_session(endpoint_id, session_id) == state


async def test_more_sessions_than_one_statement_takes_are_all_read(store: SqlStore) -> None:
    """Past ``SESSIONS_PER_READ`` ids the read takes several statements and still returns
    every stored state; a key asked for twice comes back once."""
    count = SESSIONS_PER_READ + 7
    for i in range(0, count, 2):  # every other session stored
        await store_state(store, "ep-1", f"s{i}", i)
    keys = [("ep-1", f"s{i}") for i in range(count)] + [("ep-1", "s0")]
    found = await store.load_sessions(keys)
    assert found == {("ep-1", f"s{i}"): {"context": {"n": i}} for i in range(0, count, 2)}


async def test_no_keys_read_nothing(store: SqlStore) -> None:
    """An empty request is answered with no states."""
    assert await store.load_sessions([]) == {}
