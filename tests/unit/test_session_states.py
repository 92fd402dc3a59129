"""Loads of stored session states asked for in one turn of the event loop share reads."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from flowhook.errors import StorageError
from flowhook.sessions.session_states import Key, SessionStates, State
from flowhook.storage.store import SESSIONS_PER_READ


class FakeSource:
    """An in-memory stand-in for the store's batch read, counting its reads."""

    def __init__(self, states: dict[Key, State], fail: Exception | None = None) -> None:
        self.states = states
        self.fail = fail
        self.reads: list[list[Key]] = []

    async def load_sessions(self, keys: list[Key]) -> dict[Key, State]:
        self.reads.append(keys)
        await asyncio.sleep(0)
        if self.fail is not None:
            raise self.fail
        return {k: self.states[k] for k in keys if k in self.states}


async def test_loads_of_one_loop_turn_are_one_read() -> None:
    """Loads started together are answered by one read, each with its own session's
    state, and None for a session with nothing stored."""
    source = FakeSource({("e", "a"): {"n": 1}, ("e", "b"): {"n": 2}})
    states = SessionStates(source)
    got = await asyncio.gather(states.load("e", "a"), states.load("e", "b"), states.load("e", "c"))
    assert list(got) == [{"n": 1}, {"n": 2}, None]
    assert source.reads == [[("e", "a"), ("e", "b"), ("e", "c")]]
    await states.load("e", "a")
    assert len(source.reads) == 2  # a later load is a read of its own


async def test_one_session_asked_twice_is_read_once_and_handed_out_twice() -> None:
    """Two loads of the same session share its read; each gets a state of its own, so
    one caller changing it does not change the other's."""
    source = FakeSource({("e", "a"): {"n": [1]}})
    states = SessionStates(source)
    first, second = await asyncio.gather(states.load("e", "a"), states.load("e", "a"))
    assert source.reads == [[("e", "a")]]
    assert first == second == {"n": [1]}
    assert first is not None
    assert second is not None
    first["n"].append(2)
    assert second == {"n": [1]}


async def test_a_failed_read_fails_every_load_waiting_on_it() -> None:
    """Storage failing answers every waiting load with its error; the next loads read
    again."""
    source = FakeSource({("e", "a"): {"n": 1}}, fail=StorageError("storage read failed"))
    states = SessionStates(source)
    results = await asyncio.gather(
        states.load("e", "a"), states.load("e", "b"), return_exceptions=True
    )
    assert all(isinstance(r, StorageError) for r in results)
    source.fail = None
    assert await states.load("e", "a") == {"n": 1}


async def test_a_cancelled_load_leaves_the_others_their_states() -> None:
    """A caller that gives up does not take the others' answers with it."""
    source = FakeSource({("e", "a"): {"n": 1}})
    states = SessionStates(source)
    gone = asyncio.ensure_future(states.load("e", "a"))
    kept = asyncio.ensure_future(states.load("e", "a"))
    await asyncio.sleep(0)
    gone.cancel()
    assert await kept == {"n": 1}
    with pytest.raises(asyncio.CancelledError):
        await gone


async def test_a_burst_is_read_in_parts_side_by_side() -> None:
    """More keys than one read takes are split into reads of at most
    ``SESSIONS_PER_READ`` keys that all answer."""
    count = SESSIONS_PER_READ * 2 + 1
    source = FakeSource({("e", f"s{i}"): {"n": i} for i in range(count)})
    states = SessionStates(source)
    got: list[Any] = await asyncio.gather(*(states.load("e", f"s{i}") for i in range(count)))
    assert got == [{"n": i} for i in range(count)]
    assert [len(r) for r in source.reads] == [SESSIONS_PER_READ, SESSIONS_PER_READ, 1]
