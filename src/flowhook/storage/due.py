"""The refill's read of one endpoint's outputs that may be attempted now.

An output may go when it is due (never attempted, or its retry time passed) and no earlier
output of its session is still pending: a session's outputs go in order, so only a
session's *head* (its oldest pending output) can be attempted, and the outputs right
behind a due head may follow it. The read therefore walks the endpoint's sessions that have
pending outputs, one index seek each (a loose index scan over
``ix_outbox_pending_session``), and looks behind a head only when the head is due. Its work
grows with the number of sessions owed something, never with how many outputs wait behind
a head: an endpoint failing for hours with thousands of outputs queued behind each
session's waiting head costs one seek per session, not one per output.

The same statements run on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection, Integer, String, TextClause, bindparam, select, text
from sqlalchemy.sql import Select

from flowhook.storage import schema as t

# Per session with pending outputs: its head's id, due time and partition. Each step seeks
# the next session (past the previous one) in the pending-per-session index; SQLite is told
# the index, as with an equality on status it could pick (status, id) and scan every pending
# row per step. The head's columns are looked up by id, one row each: a join of the heads
# with the outbox could be planned (PostgreSQL did) as a hash join over the whole table.
_HEADS_SQL = """
    WITH RECURSIVE sessions(sid) AS (
        SELECT (
            SELECT MIN(session_id) FROM outbox {hint}
            WHERE status = 'pending' AND endpoint_id = :endpoint_id
        )
        UNION ALL
        SELECT (
            SELECT MIN(o.session_id) FROM outbox o {hint}
            WHERE o.status = 'pending' AND o.endpoint_id = :endpoint_id
              AND o.session_id > sessions.sid
        )
        FROM sessions WHERE sessions.sid IS NOT NULL
    ),
    heads(sid, hid) AS (
        SELECT sessions.sid, (
            SELECT MIN(p.id) FROM outbox p {hint}
            WHERE p.status = 'pending' AND p.endpoint_id = :endpoint_id
              AND p.session_id = sessions.sid
        )
        FROM sessions WHERE sessions.sid IS NOT NULL
    )
    SELECT
        heads.hid AS id,
        heads.sid AS session_id,
        (SELECT h.not_before FROM outbox h WHERE h.id = heads.hid) AS not_before,
        (SELECT h.partition FROM outbox h WHERE h.id = heads.hid) AS partition
    FROM heads
"""
_HEADS: dict[str, TextClause] = {
    "sqlite": text(_HEADS_SQL.format(hint="INDEXED BY ix_outbox_pending_session")),
    "postgresql": text(_HEADS_SQL.format(hint="")),
}


def _behind_statement() -> Select[Any]:
    """The pending outputs right behind a session's head, oldest first."""
    o = t.outbox.c
    return (
        select(o.id, o.not_before)
        .where(
            o.status == "pending",
            o.endpoint_id == bindparam("endpoint_id", type_=String),
            o.session_id == bindparam("session_id", type_=String),
            o.id > bindparam("head", type_=Integer),
        )
        .order_by(o.id)
        .limit(bindparam("limit", type_=Integer))
    )


# Built once: a refill runs after attempts of a failing endpoint, and building a statement
# costs the event loop's thread more than running it.
_BEHIND = _behind_statement()


class DueIds(NamedTuple):
    """What may be attempted now: due session heads (oldest first), then the due outputs
    right behind them (session by session, in order). ``heads + behind`` keeps every
    session in order in any prefix of it."""

    heads: list[int]
    behind: list[int]

    def all(self) -> list[int]:
        return self.heads + self.behind


def read_due(
    conn: Connection,
    endpoint_id: str,
    now: float,
    limit: int,
    partitions: Sequence[int] | None = None,
) -> DueIds:
    """Ids of the endpoint's outputs that may be attempted now, at most ``limit`` in all:
    every due head first, then the due outputs behind the due heads."""
    owned = None if partitions is None else set(partitions)
    every_head = conn.execute(_HEADS[conn.dialect.name], {"endpoint_id": endpoint_id}).all()
    due = sorted(
        (int(h.id), str(h.session_id))
        for h in every_head
        if float(h.not_before) <= now and (owned is None or h.partition in owned)
    )
    heads = [head for head, _session in due[:limit]]
    behind: list[int] = []
    for head, session_id in due[:limit]:
        room = limit - len(heads) - len(behind)
        if room <= 0:
            break
        params = {"endpoint_id": endpoint_id, "session_id": session_id, "head": head}
        for row in conn.execute(_BEHIND, {**params, "limit": room}):
            if float(row.not_before) > now:
                break  # a later output waits for its retry (replayed ones may): it blocks
            behind.append(int(row.id))
    return DueIds(heads, behind)
