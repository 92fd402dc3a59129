"""Ids that settled while reads of pending work were running.

A read of the store that started before an item settled (or was let go) may still return
it as pending; handing it over again would run or send it twice. So each read takes a
mark when it starts, and afterwards asks whether an id settled since that mark.

One table serves every read running at once and is pruned as the oldest read ends, so
memory is bounded by what settles during the longest read running now, never by how
many reads ran. Reads are told apart by a token of their own, not by what they collected:
two reads that saw the same settlements are still two reads.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator


class SettledDuringReads:
    def __init__(self) -> None:
        self._clock = 0
        self._tokens = itertools.count()
        # read token -> clock when it started; tokens and clocks both increase, so the
        # first entry is always the oldest read running.
        self._reads: dict[int, int] = {}
        # id -> clock when it last settled, kept in clock order (re-settling moves it last).
        self._settled: dict[int, int] = {}

    def __len__(self) -> int:
        """Ids remembered now (for bounds checks and metrics)."""
        return len(self._settled)

    @property
    def reads_running(self) -> int:
        return len(self._reads)

    def note(self, item_id: int) -> None:
        """The item settled or memory let go of it. Free when no read is running."""
        if not self._reads:
            return
        self._clock += 1
        self._settled.pop(item_id, None)
        self._settled[item_id] = self._clock

    @contextlib.contextmanager
    def reading(self) -> Iterator[Callable[[int], bool]]:
        """Wrap a read *and* the filtering of what it returned. Yields a predicate: did
        this id settle after the read started?"""
        token = next(self._tokens)
        mark = self._clock
        self._reads[token] = mark
        try:
            yield lambda item_id: self._settled.get(item_id, -1) > mark
        finally:
            del self._reads[token]
            self._prune()

    def _prune(self) -> None:
        if not self._reads:
            self._settled.clear()
            return
        oldest = next(iter(self._reads.values()))
        settled = self._settled
        # What settled before the oldest running read began matters to no read.
        while settled:
            item_id, at = next(iter(settled.items()))
            if at > oldest:
                break
            del settled[item_id]
