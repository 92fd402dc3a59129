"""Deleting history nobody owes anything to any more, in small batches.

Processed messages, finished outbox rows (delivered, or failed and not replayed) and
delivery attempts older than the history retention are deleted, turn statistics older
than the analytics retention; pending work never is. Each
batch is its own short transaction through the writer, so a large purge does not hold
up the per-message writes.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, delete, select

from flowhook.storage import schema as t
from flowhook.storage.store import SqlStore

BATCH = 2000


async def purge_history(
    store: SqlStore, cutoff: float, stats_cutoff: float | None = None
) -> dict[str, int]:
    """Delete finished history older than ``cutoff`` and turn statistics older than
    ``stats_cutoff`` (unix times; None: keep them); returns counts."""
    cutoffs = {"messages": cutoff, "outbox": cutoff, "attempts": cutoff}
    if stats_cutoff is not None:
        cutoffs["turn_stats"] = stats_cutoff
    counts = dict.fromkeys(cutoffs, 0)
    for table, table_cutoff in cutoffs.items():
        while True:
            deleted: int = await store._write(_purge_batch, (table, table_cutoff))
            counts[table] += deleted
            if deleted < BATCH:
                break
    return counts


def _purge_batch(conn: Connection, args: Sequence[tuple[str, float]]) -> list[int]:
    out = []
    for table, cutoff in args:
        if table == "messages":
            m = t.messages
            ids = select(m.c.id).where(m.c.status != "pending", m.c.processed_at < cutoff)
            target = m
        elif table == "outbox":
            o = t.outbox
            ids = select(o.c.id).where(o.c.status != "pending", o.c.finished_at < cutoff)
            target = o
        elif table == "turn_stats":
            ts = t.turn_stats
            ids = select(ts.c.id).where(ts.c.at < cutoff)
            target = ts
        else:
            a = t.attempts
            ids = select(a.c.id).where(a.c.at < cutoff)
            target = a
        res = conn.execute(
            delete(target).where(target.c.id.in_(ids.limit(BATCH).scalar_subquery()))
        )
        out.append(res.rowcount)
    return out
