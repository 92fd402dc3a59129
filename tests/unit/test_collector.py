"""The garbage collector settings of ``flowhook serve`` (flowhook.collector)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from flowhook.collector import YOUNG_THRESHOLD, tune_collector


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_collector")
def test_what_exists_is_frozen_and_young_collections_are_rarer() -> None:
    """After tuning, the objects alive then are out of the collector's generations, a young
    collection waits for YOUNG_THRESHOLD allocations, and the older generations keep
    their thresholds."""
    _young, middle, old = gc.get_threshold()
    kept: list[list[int]] = [[]]
    assert gc.is_tracked(kept)
    tune_collector()
    assert gc.get_freeze_count() > 0
    assert id(kept) not in {id(o) for o in gc.get_objects()}
    assert gc.get_threshold() == (YOUNG_THRESHOLD, middle, old)


@pytest.mark.usefixtures("restored_collector")
def test_cycles_made_after_tuning_are_still_collected() -> None:
    """Garbage cycles made after the freeze are found by the next collection."""
    tune_collector()

    class Node:
        other: object | None = None

    a, b = Node(), Node()
    a.other, b.other = b, a
    ids = {id(a), id(b)}
    del a, b
    assert gc.collect() >= 2
    assert not any(id(o) in ids for o in gc.get_objects() if isinstance(o, Node))
