"""A message keeps its text and data only while it is pending. Once its turn committed
(done or failed), or the endpoint's deletion failed it, nothing reads them again, and
keeping them made SQLite copy the whole row, overflow pages included, to change its
status."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

from sqlalchemy import Connection, text

from flowhook.storage.records import TurnCommit
from flowhook.storage.store import SqlStore
from tests.storage.test_store import endpoint, message
from tests.support.sqlite_log import log_pages, store_without_checkpoints

Contents = dict[int, tuple[str, str | None, str | None]]


async def _contents(store: SqlStore) -> Contents:
    def run(conn: Connection) -> Contents:
        rows = conn.execute(text("SELECT id, status, text, data FROM messages ORDER BY id"))
        return {int(r[0]): (r[1], r[2], r[3]) for r in rows}

    return await store._read(run)


async def test_finished_messages_keep_no_text_or_data(store: SqlStore) -> None:
    """Done and failed turns clear their message's text and data in the same commit; a
    pending message keeps both; deleting the endpoint fails its pending messages and
    clears them too."""
    await store.create_endpoint(endpoint())
    done = await store.accept_message(message("s1", "first"))
    failed = await store.accept_message(message("s2", "second"))
    waiting = await store.accept_message(message("s3", "third"))
    await store.commit_turn(TurnCommit(done, "ep-1", "s1", "u1", {"n": 1}, [b'{"a":1}']))
    await store.commit_turn(TurnCommit(failed, "ep-1", "s2", "u1", None, failed=True, error="x"))
    rows = await _contents(store)
    assert rows == {
        done: ("done", None, None),
        failed: ("failed", None, None),
        waiting: ("pending", "third", '{"k":[1,2]}'),
    }
    [pending] = await store.pending_messages()
    assert (pending.text, pending.data) == ("third", {"k": [1, 2]})

    await store.delete_endpoint("ep-1", force=True)
    assert (await _contents(store))[waiting] == ("failed", None, None)


async def test_finishing_a_large_message_does_not_copy_it(tmp_path: Path) -> None:
    """SQLite: committing the turn of a 100 KiB message adds a few pages to the log, not
    the 25 of its text copied with the row (nor 25 more of zeros over the pages freed)."""
    database = tmp_path / "flowhook.db"
    async with store_without_checkpoints(database) as store:
        await store.create_endpoint(endpoint())
        large = dataclasses.replace(message("s1", "x" * 100 * 1024), trace_id="t-large")
        mid = await store.accept_message(large)
        with sqlite3.connect(database) as side:
            busy, _, _ = side.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0
        assert log_pages(database) == 0
        await store.commit_turn(TurnCommit(mid, "ep-1", "s1", "u1", {"n": 1}))
        assert 0 < log_pages(database) < 10
        secure_delete = await store._read(
            lambda c: c.exec_driver_sql("PRAGMA secure_delete").scalar_one()
        )
        assert secure_delete == 2  # FAST
