"""Counting the runs of messages read back from the inbox (crash, restart, takeover).

A run is counted, and committed, before it starts, so a message that crashes the process
every time is failed after a bounded number of runs (``FLOWHOOK_TURN_MAX_ATTEMPTS``).
Runs inside the group-commit writer's transaction, on the raw driver connection.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection

from flowhook.storage.outcomes import all_distinct, raw_cursor

_COUNT_RUN = "UPDATE messages SET attempts = attempts + 1 WHERE id = ? AND status = 'pending'"
# PostgreSQL: the partitions looked up by primary key first, then each row by partition and
# id: with ``id`` alone PostgreSQL may walk a whole partial index of pending messages per
# row (docs/architecture.md, "PostgreSQL cost per message").
_COUNT_RUNS_PG = (
    "WITH k AS MATERIALIZED (SELECT id, partition FROM messages WHERE id = ANY(%s)) "
    "UPDATE messages AS m SET attempts = m.attempts + 1 FROM k "
    "WHERE m.partition = k.partition AND m.id = k.id AND m.status = 'pending' "
    "RETURNING m.id, m.attempts"
)


class RunCounter:
    def __init__(self, backend: str) -> None:
        self._pg = backend == "postgresql"

    def count(self, conn: Connection, batches: Sequence[Sequence[int]]) -> list[dict[int, int]]:
        """Count one more run for each still-pending message; returns, per batch, the
        new count by message id (messages no longer pending are left out)."""
        cursor = raw_cursor(conn)
        every = [i for ids in batches for i in ids]
        if self._pg and all_distinct(every):
            # One statement for the whole group commit (a run is counted per message).
            cursor.execute(_COUNT_RUNS_PG, (every,))
            counted = {int(i): int(n) for i, n in cursor.fetchall()}
            return [{i: counted[i] for i in ids if i in counted} for ids in batches]
        out: list[dict[int, int]] = []
        for ids in batches:
            if self._pg:
                cursor.execute(_COUNT_RUNS_PG, (list(ids),))
                out.append({int(i): int(n) for i, n in cursor.fetchall()})
                continue
            counts: dict[int, int] = {}
            for message_id in ids:
                cursor.execute(_COUNT_RUN, (message_id,))
                if cursor.rowcount == 1:
                    cursor.execute("SELECT attempts FROM messages WHERE id = ?", (message_id,))
                    counts[message_id] = int(cursor.fetchone()[0])
            out.append(counts)
        return out
