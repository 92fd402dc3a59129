"""Stored session states, read many at a time.

The first turn of a session this process holds no state for reads the session's stored
state. Read one by one, each is a trip through a reader thread and the database, and a
burst of sessions new to the process (a campaign starting, a gateway reconnecting, a
partition taken over) queues behind those reads: 500 new sessions a second held the turns
on PostgreSQL back for two seconds, ingress p50 above 120 ms at a load the process
otherwise serves in 20 (docs/performance.md, "New sessions, read together"). The reads
asked for during one turn of the event loop are made as one (``SqlStore.load_sessions``),
in parts of ``SESSIONS_PER_READ`` that run on the reader threads side by side.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import orjson

from flowhook.storage.store import SESSIONS_PER_READ

Key = tuple[str, str]  # (endpoint_id, session_id)
State = dict[str, Any]


class StatesSource(Protocol):
    async def load_sessions(self, keys: list[Key]) -> dict[Key, State]: ...


class SessionStates:
    """``load`` one session's stored state (None when it has none); the loads of one
    turn of the event loop share reads."""

    def __init__(self, store: StatesSource) -> None:
        self._store = store
        self._waiting: dict[Key, list[asyncio.Future[State | None]]] = {}
        # Held here: the loop keeps only a weak reference to a running task.
        self._reads: set[asyncio.Task[None]] = set()
        self.reads = 0  # reads made (tests, and a gauge of how well loads gather)

    async def load(self, endpoint_id: str, session_id: str) -> State | None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[State | None] = loop.create_future()
        if not self._waiting:
            loop.call_soon(self._read_waiting)
        self._waiting.setdefault((endpoint_id, session_id), []).append(future)
        return await future

    def _read_waiting(self) -> None:
        waiting, self._waiting = self._waiting, {}
        keys = list(waiting)
        for start in range(0, len(keys), SESSIONS_PER_READ):
            part = {key: waiting[key] for key in keys[start : start + SESSIONS_PER_READ]}
            task = asyncio.ensure_future(self._read(part))
            self._reads.add(task)
            task.add_done_callback(self._reads.discard)

    async def _read(self, waiting: dict[Key, list[asyncio.Future[State | None]]]) -> None:
        self.reads += 1
        try:
            found = await self._store.load_sessions(list(waiting))
        except BaseException as exc:
            for futures in waiting.values():
                for future in futures:
                    if future.done():
                        continue
                    if isinstance(exc, Exception):
                        future.set_exception(exc)
                    else:  # cancelled, the process stopping: nobody waits forever
                        future.cancel()
            if not isinstance(exc, Exception):
                raise
            return
        for key, futures in waiting.items():
            state = found.get(key)
            first = True
            for future in futures:
                if future.done():  # its caller was cancelled
                    continue
                # Each caller gets a state of its own: a turn changes the one it is given.
                own = state if first or state is None else orjson.loads(orjson.dumps(state))
                future.set_result(own)
                first = False
