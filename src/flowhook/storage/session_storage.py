"""Reading and writing the per-session storage of an endpoint's transformers."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson
from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from flowhook.storage import schema as t
from flowhook.storage.store import SqlStore

# (user_id, session_id)
StorageKey = tuple[str, str]
# One session's storage, as JSON: notes about a conversation, not a file store.
MAX_STORAGE_BYTES = 1024 * 1024


class SessionStorageStore:
    def __init__(self, store: SqlStore) -> None:
        self._store = store

    async def load(self, endpoint_id: str, user_id: str, session_id: str) -> dict[str, Any]:
        """The session's storage; ``{}`` when nothing was kept yet."""

        def run(c: Connection) -> dict[str, Any]:
            s = t.session_storage
            raw = c.execute(
                select(s.c.data).where(
                    s.c.endpoint_id == endpoint_id,
                    s.c.user_id == user_id,
                    s.c.session_id == session_id,
                )
            ).scalar()
            value = orjson.loads(raw) if raw else {}
            return value if isinstance(value, dict) else {}

        return await self._store._read(run)

    async def save(self, endpoint_id: str, items: Mapping[StorageKey, dict[str, Any]]) -> None:
        """Store each session's whole storage (replacing what was kept); ValueError for
        one over MAX_STORAGE_BYTES (nothing is stored then)."""
        now = time.time()
        rows = []
        for (user_id, session_id), data in items.items():
            raw = orjson.dumps(data)
            if len(raw) > MAX_STORAGE_BYTES:
                raise ValueError(
                    f"a session storage of {len(raw)} bytes is over {MAX_STORAGE_BYTES}"
                )
            rows.append(
                {
                    "endpoint_id": endpoint_id,
                    "user_id": user_id,
                    "session_id": session_id,
                    "data": raw.decode(),
                    "updated_at": now,
                }
            )
        if not rows:
            return

        def run(c: Connection) -> None:
            dialect = postgresql if c.dialect.name == "postgresql" else sqlite
            stmt = dialect.insert(t.session_storage)
            c.execute(
                stmt.on_conflict_do_update(
                    index_elements=["endpoint_id", "user_id", "session_id"],
                    set_={"data": stmt.excluded.data, "updated_at": stmt.excluded.updated_at},
                ),
                rows,
            )

        await self._store.transact(run)

    async def purge(self, older_than: float) -> int:
        """Delete storage untouched since ``older_than`` (Unix seconds)."""

        def run(c: Connection) -> int:
            s = t.session_storage
            return c.execute(delete(s).where(s.c.updated_at < older_than)).rowcount or 0

        return await self._store.transact(run)
