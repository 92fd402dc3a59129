"""SettledDuringReads: what each overlapping read must skip, with bounded memory."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Hashable

from hypothesis import given, settings
from hypothesis import strategies as st

from flowhook.settled_during_reads import SettledDuringReads

# One step: start a read, end the n-th running read (asking it about every id and session
# first), settle an id, or let an id go with its session.
step = st.one_of(
    st.tuples(st.just("start"), st.just(0)),
    st.tuples(st.just("end"), st.integers(0, 7)),
    st.tuples(st.just("settle"), st.integers(0, 9)),
    st.tuples(st.just("let_go"), st.integers(0, 9)),
)

Asks = Callable[[int, Hashable | None], bool]


def session_of(item_id: int) -> str:
    return f"s{item_id % 3}"


@settings(max_examples=300, deadline=None)
@given(st.lists(step, max_size=60))
def test_each_read_skips_exactly_what_changed_while_it_ran(steps: list[tuple[str, int]]) -> None:
    """Against a model that gives every read its own sets: for any interleaving of reads
    starting and ending in any order, ids settling and ids let go with their session (some
    twice), each read is told an item is stale exactly when it settled or was let go, or
    anything of its session was let go, after that read started; when no read runs,
    nothing is remembered."""
    table = SettledDuringReads()
    running: list[tuple[contextlib.ExitStack, Asks, set[int], set[str]]] = []
    for kind, arg in steps:
        if kind == "start":
            stack = contextlib.ExitStack()
            running.append((stack, stack.enter_context(table.reading()), set(), set()))
        elif kind in ("settle", "let_go"):
            session = session_of(arg) if kind == "let_go" else None
            table.note(arg, session)
            for _stack, _asks, ids, sessions in running:
                ids.add(arg)
                if session is not None:
                    sessions.add(session)
        elif running:
            stack, asks, ids, sessions = running.pop(arg % len(running))
            for i in range(10):
                assert asks(i, None) == (i in ids)
                assert asks(i, session_of(i)) == (i in ids or session_of(i) in sessions)
            stack.close()
        assert table.reads_running == len(running)
        if not running:
            assert len(table) == 0
    for stack, _asks, _ids, _sessions in running:
        stack.close()
    assert len(table) == 0


def test_memory_follows_the_oldest_running_read_not_the_number_of_reads() -> None:
    """Many reads overlapping in a rolling window each see thousands of settlements, yet
    the table holds only what settled since the oldest read now running began."""
    table = SettledDuringReads()
    window: list[contextlib.ExitStack] = []
    next_id = 0
    for _round in range(200):
        stack = contextlib.ExitStack()
        stack.enter_context(table.reading())
        window.append(stack)
        for _ in range(50):
            table.note(next_id)
            next_id += 1
        if len(window) > 3:
            window.pop(0).close()
        assert len(table) <= 4 * 50
    for stack in window:
        stack.close()
    assert len(table) == 0
