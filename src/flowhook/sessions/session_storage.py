"""Per-session storage for transformers: a JSON object per user and session that an
endpoint's transformers read and write, e.g. to remember a client's channel id on the
way in and use it on the way out.

A transformer that declares a second parameter gets a ``SessionStorage``; its
``get(user_id, session_id)`` returns that session's storage as a plain ``dict`` to
read and change. What the transformer changed is stored when it returns (a failing
transformer's changes are dropped). Such a transformer runs in a worker thread, so
loading the storage from the database does not block the event loop.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from flowhook.storage.session_storage import SessionStorageStore, StorageKey

LOAD_TIMEOUT = 10.0
MAX_ID_LENGTH = 1024


class SessionStorage:
    """Handed to one transformer call; ``get`` may be called from the worker thread."""

    def __init__(
        self, store: SessionStorageStore, endpoint_id: str, loop: asyncio.AbstractEventLoop
    ) -> None:
        self._store = store
        self._endpoint_id = endpoint_id
        self._loop = loop
        self._loaded: dict[StorageKey, tuple[dict[str, Any], dict[str, Any]]] = {}

    def get(self, user_id: str, session_id: str) -> dict[str, Any]:
        """The session's storage (``{}`` at first); change it in place to keep changes."""
        for name, value in (("user_id", user_id), ("session_id", session_id)):
            if not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH:
                raise ValueError(f"{name} must be a non-empty string of at most 1024 characters")
        key = (user_id, session_id)
        if key not in self._loaded:
            load = self._store.load(self._endpoint_id, user_id, session_id)
            data = asyncio.run_coroutine_threadsafe(load, self._loop).result(LOAD_TIMEOUT)
            self._loaded[key] = (data, copy.deepcopy(data))
        return self._loaded[key][0]

    def changed(self) -> dict[StorageKey, dict[str, Any]]:
        """Each storage the transformer changed, as it left it."""
        return {key: now for key, (now, before) in self._loaded.items() if now != before}
