"""The server's collector settings: start-up's objects are frozen out of every
collection, and the youngest generation is collected less often than CPython's default."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from flowhook.collector import YOUNG_THRESHOLD, tune_collector


@pytest.fixture
def restored_collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_tune_collector_freezes_and_raises_the_young_threshold(restored_collector: None) -> None:
    """After tuning, what was alive is in the permanent generation (never walked), the
    youngest generation waits for ``YOUNG_THRESHOLD`` allocations, and the older
    generations keep their settings."""
    before = gc.get_threshold()
    tune_collector()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (YOUNG_THRESHOLD, before[1], before[2])
    assert before[0] < YOUNG_THRESHOLD


def test_cycles_are_still_collected(restored_collector: None) -> None:
    """A garbage cycle made after tuning is still freed by a collection."""
    tune_collector()

    class Node:
        other: object = None

    a, b = Node(), Node()
    a.other, b.other = b, a
    del a, b
    assert gc.collect() >= 2
