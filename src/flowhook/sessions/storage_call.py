"""Runs inside a code worker: calls a transformer with the session storage.

The worker cannot reach the database, so the server hands over the storages it has
loaded. ``storage.get(user_id, session_id)`` for one it has not stops the call (an
exception user code cannot catch with ``except Exception``) and asks the server for
it; the server loads it and calls again, the storage now included. Transformers are
functions of their input, so running one again from the start gives the same result;
call ``storage.get`` before anything with an effect outside the function.

The answer is ``{"need": [user_id, session_id]}`` or ``{"result": ..., "storage":
[[user_id, session_id, data], ...]}`` (every storage as the call left it).
"""

from __future__ import annotations

from typing import Any

from flowhook.isolation.worker import load


class _NeedStorage(BaseException):
    def __init__(self, user_id: str, session_id: str) -> None:
        super().__init__(user_id, session_id)
        self.key = [user_id, session_id]


class WorkerStorage:
    """What a transformer's ``storage`` argument is."""

    def __init__(self, loaded: list[list[Any]]) -> None:
        self._data: dict[tuple[str, str], dict[str, Any]] = {
            (str(u), str(s)): data for u, s, data in loaded
        }

    def get(self, user_id: str, session_id: str) -> dict[str, Any]:
        """The session's storage (``{}`` at first); change it in place to keep changes."""
        if not isinstance(user_id, str) or not isinstance(session_id, str):
            raise TypeError("storage.get takes a user id and a session id (strings)")
        key = (user_id, session_id)
        if key not in self._data:
            raise _NeedStorage(user_id, session_id)
        return self._data[key]

    def items(self) -> list[list[Any]]:
        return [[u, s, data] for (u, s), data in self._data.items()]


def call(target: dict[str, Any], doc: Any, loaded: list[list[Any]]) -> dict[str, Any]:
    storage = WorkerStorage(loaded)
    try:
        result = load(target)(doc, storage)
    except _NeedStorage as need:
        return {"need": need.key}
    return {"result": result, "storage": storage.items()}
