"""Deleting history nobody owes anything to any more, in small batches.

Processed messages, finished outbox rows (delivered, or failed and not replayed) and
delivery attempts older than the history retention are deleted, turn statistics older
than the analytics retention; pending work never is.

Each batch's candidates are found by a read on a reader thread, and the writer deletes
only those ids (by primary key, with the same conditions checked again), each batch its
own short transaction, so a purge never holds up the per-message writes. Finding them
may scan a table (finished rows by finish time: no index serves that, and one would cost
a write per delivered output); that scan ran inside a group commit before, and on SQLite
it read each 100 KiB row to its end, so every message's commit waited for about the
whole database (a 0.5 s stall each 600 s in ``bench failing``, docs/performance.md).
Since the bodies left the outbox rows (migration 0014) the scan reads small rows only.

An outbox row's body (``outbox_bodies``) is deleted in the same statement's transaction
as the row: the ids the delete returns, so a row that changed meanwhile keeps its body.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from sqlalchemy import ColumnElement, Connection, Table, and_, delete, select

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
            ids = await store._read(functools.partial(_candidates, table, table_cutoff))
            if not ids:
                break
            deleted: int = await store._write(_delete_batch, (table, table_cutoff, ids))
            counts[table] += deleted
            if len(ids) < BATCH or not deleted:
                break  # (none deleted: they changed meanwhile; the next purge looks again)
    return counts


def _purgeable(table: str, cutoff: float) -> tuple[Table, ColumnElement[bool]]:
    """The table and the condition of its rows that may go."""
    if table == "messages":
        m = t.messages
        return m, and_(m.c.status != "pending", m.c.processed_at < cutoff)
    if table == "outbox":
        o = t.outbox
        return o, and_(o.c.status != "pending", o.c.finished_at < cutoff)
    if table == "turn_stats":
        return t.turn_stats, t.turn_stats.c.at < cutoff
    return t.attempts, t.attempts.c.at < cutoff


def _candidates(table: str, cutoff: float, conn: Connection) -> list[int]:
    target, condition = _purgeable(table, cutoff)
    query = select(target.c.id).where(condition).limit(BATCH)
    return [int(i) for i in conn.execute(query).scalars()]


def _delete_batch(conn: Connection, args: Sequence[tuple[str, float, list[int]]]) -> list[int]:
    out = []
    for table, cutoff, ids in args:
        target, condition = _purgeable(table, cutoff)
        query = delete(target).where(target.c.id.in_(ids), condition)
        if target is not t.outbox:
            out.append(conn.execute(query).rowcount)
            continue
        deleted = list(conn.execute(query.returning(target.c.id)).scalars())
        if deleted:
            b = t.outbox_bodies
            conn.execute(delete(b).where(b.c.outbox_id.in_(deleted)))
        out.append(len(deleted))
    return out
