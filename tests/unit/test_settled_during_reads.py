"""SettledDuringReads: what each overlapping read must skip, with bounded memory."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from flowhook.settled_during_reads import SettledDuringReads

# One step: start a read, end the n-th running read (asking it about every id first), or
# settle an id.
step = st.one_of(
    st.tuples(st.just("start"), st.just(0)),
    st.tuples(st.just("end"), st.integers(0, 7)),
    st.tuples(st.just("settle"), st.integers(0, 9)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(step, max_size=60))
def test_each_read_skips_exactly_what_settled_while_it_ran(steps: list[tuple[str, int]]) -> None:
    """Against a model that gives every read its own set: for any interleaving of reads
    starting and ending in any order and ids settling (some twice), each read is told an
    id settled exactly when it settled after that read started; when no read runs,
    nothing is remembered."""
    table = SettledDuringReads()
    running: list[tuple[contextlib.ExitStack, Callable[[int], bool], set[int]]] = []
    for kind, arg in steps:
        if kind == "start":
            stack = contextlib.ExitStack()
            running.append((stack, stack.enter_context(table.reading()), set()))
        elif kind == "settle":
            table.note(arg)
            for _stack, _asks, model in running:
                model.add(arg)
        elif running:
            stack, asks, model = running.pop(arg % len(running))
            assert {i for i in range(10) if asks(i)} == model
            stack.close()
        assert table.reads_running == len(running)
        if not running:
            assert len(table) == 0
        else:
            assert len(table) <= len(set().union(*(m for _s, _a, m in running)))
    for stack, _asks, _model in running:
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
