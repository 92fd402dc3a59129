"""A bounded in-memory cache of session states, so a turn rarely reads the database.

This process is the only one running a given session's turns (with several
processes: while it owns the session's partition; the cache is cleared of a
partition's sessions when it is claimed), so the state it last committed is the
state in the database; evicted or unknown sessions are read back from storage.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

SessionKey = tuple[str, str]  # (endpoint_id, session_id)


class StateCache:
    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        # An OrderedDict, not a dict: a dict that is popped from the front and moved to the
        # back keeps the holes, and finding its first key walks them (docs/performance.md,
        # "Oldest-first tables").
        self._states: OrderedDict[SessionKey, dict[str, Any]] = OrderedDict()

    def get(self, key: SessionKey) -> dict[str, Any] | None:
        state = self._states.get(key)
        if state is not None:
            self._states.move_to_end(key)  # most recently used last
        return state

    def put(self, key: SessionKey, state: dict[str, Any]) -> None:
        self._states[key] = state
        self._states.move_to_end(key)
        if len(self._states) > self._capacity:
            self._states.popitem(last=False)  # the least recently used

    def drop(self, key: SessionKey) -> None:
        self._states.pop(key, None)

    def drop_where(self, pred: Callable[[SessionKey], bool]) -> None:
        for key in [k for k in self._states if pred(k)]:
            del self._states[key]

    def clear(self) -> None:
        self._states.clear()

    def __len__(self) -> int:
        return len(self._states)

    def __contains__(self, key: SessionKey) -> bool:
        """Whether the session's state is held, without counting as a use."""
        return key in self._states
