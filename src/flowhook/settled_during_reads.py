"""Ids that settled while reads of pending work were running.

A read of the store that started before an item settled (or was let go) may still return
it as pending; handing it over again would run or send it twice. So each read takes a
mark when it starts, and afterwards asks whether an id settled since that mark.

One table serves every read running at once and is pruned as the oldest read ends, so
memory is bounded by what settles during the longest read running now, never by how
many reads ran. Reads are told apart by a token of their own, not by what they collected:
two reads that saw the same settlements are still two reads.

An item *let go* (memory gave it back to the store without an outcome, e.g. a session's
head waiting long for its retry) taints its whole session for the reads running then: such
a read may have seen the head due and the outputs behind it due too; handing over those
without the head would let them overtake it. So a let-go also records the session, and a
read hands over nothing of that session; a later read finds the head first.
"""

from __future__ import annotations

import contextlib
import itertools
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


class SettledDuringReads:
    def __init__(self) -> None:
        self._clock = 0
        self._tokens = itertools.count()
        # read token -> clock when it started; tokens and clocks both increase, so the
        # first entry is always the oldest read running.
        self._reads: OrderedDict[int, int] = OrderedDict()
        # id -> clock when it last settled, kept in clock order (re-settling moves it last).
        # OrderedDicts: each is emptied from the front, where a dict keeps the holes and
        # walks them to find its first key (docs/performance.md, "Oldest-first tables").
        self._settled: OrderedDict[int, int] = OrderedDict()
        # session -> clock when something of it was last let go, in clock order likewise.
        self._sessions: OrderedDict[Hashable, int] = OrderedDict()

    def __len__(self) -> int:
        """Ids and sessions remembered now (for bounds checks and metrics)."""
        return len(self._settled) + len(self._sessions)

    @property
    def reads_running(self) -> int:
        return len(self._reads)

    def note(self, item_id: int, let_go_session: Hashable | None = None) -> None:
        """The item settled, or (with its session) memory let go of it. Free when no read
        is running."""
        if not self._reads:
            return
        self._clock += 1
        _move_last(self._settled, item_id, self._clock)
        if let_go_session is not None:
            _move_last(self._sessions, let_go_session, self._clock)

    @contextlib.contextmanager
    def reading(self) -> Iterator[Callable[[int, Hashable | None], bool]]:
        """Wrap a read *and* the filtering of what it returned. Yields a predicate: is this
        item stale for the read, i.e. did it settle, or was something of its session let
        go, after the read started? (``None`` as the session: the item alone counts.)"""
        token = next(self._tokens)
        mark = self._clock
        self._reads[token] = mark
        settled, sessions = self._settled, self._sessions

        def stale(item_id: int, session: Hashable | None) -> bool:
            if settled.get(item_id, -1) > mark:
                return True
            return session is not None and sessions.get(session, -1) > mark

        try:
            yield stale
        finally:
            del self._reads[token]
            self._prune()

    def _prune(self) -> None:
        if not self._reads:
            self._settled.clear()
            self._sessions.clear()
            return
        oldest = next(iter(self._reads.values()))
        # What happened before the oldest running read began matters to no read.
        _drop_until(self._settled, oldest)
        _drop_until(self._sessions, oldest)


def _move_last(table: OrderedDict[K, int], key: K, clock: int) -> None:
    table[key] = clock
    table.move_to_end(key)


def _drop_until(table: OrderedDict[K, int], clock: int) -> None:
    """Drop the leading entries (oldest first) noted at or before ``clock``."""
    while table and next(iter(table.values())) <= clock:
        table.popitem(last=False)
