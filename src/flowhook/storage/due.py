"""The refill's read of one endpoint's outputs that may be attempted now.

An output may go when it is due (never attempted, or its retry time passed) and no earlier
output of its session is still pending: a session's outputs go in order, so only a
session's *head* (its oldest pending output) can be attempted, and the outputs right
behind a due head may follow it. The read therefore walks the endpoint's sessions that have
pending outputs, one index seek each (a loose index scan over ``ix_outbox_pending_head``),
and looks behind a head only when the head is due. The walk stops once it has as many due
heads as it may take, and the next read resumes after the last session it visited (round
robin: no session starves). Its work grows with what it takes and with the sessions it
passes whose head is not due, never with how many outputs wait behind a head: an endpoint
failing for hours with thousands of outputs queued behind each session's waiting head
costs one seek per session, not one per output.

Everything it reads comes from that index (due time, attempts and partition are in it),
so a step is one seek and no lookup of the row. Until migration 0014 the row held the
output's body, and on SQLite the columns stored after it sat at the end of the body's
overflow pages: a lookup walked the whole body (25 pages for 100 KiB). The bodies are in
``outbox_bodies`` now and a row is a fraction of a page, so a lookup would cost one more
b-tree descent per row, not the body; the covering index still saves that.

On SQLite the walk runs in steps of ``WALK_STEP`` sessions and checks due times here. On
PostgreSQL, where each seek is a round of the executor in another process, one lazy
recursive statement walks from the cursor and filters due heads itself, stopping at
``limit`` (``_PG_HEADS``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection, Integer, TextClause, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY

# Per session with pending outputs: its head's id, due time and partition. Each step seeks
# the next session (past the previous one) in the pending-per-session index; SQLite is told
# the index, as with an equality on status it could pick (status, id) and scan every pending
# row per step. The head's columns are looked up by id, one row each: a join of the heads
# with the outbox could be planned (PostgreSQL did) as a hash join over the whole table.
# PostgreSQL takes no hints: a head's ``session_id`` is bounded by a range, not an equality,
# so that only an index ordered by session then id serves ``ORDER BY ... LIMIT 1`` (with an
# equality it read the head through the primary key, walking every output queued before it).
# A walk visits at most ``:steps`` sessions, those after ``:after`` and up to ``:upto`` (in
# the database's order of session ids) when given: a read resumes where the last one
# stopped, so it costs seeks for the outputs it takes, not for every session owed something.
_HEADS_SQL = """
    WITH RECURSIVE sessions(sid, step) AS (
        SELECT (
            SELECT session_id FROM outbox {hint}
            WHERE status = 'pending' AND endpoint_id = :endpoint_id {bounds}
            ORDER BY endpoint_id, session_id LIMIT 1
        ), 1
        UNION ALL
        SELECT (
            SELECT o.session_id FROM outbox o {hint}
            WHERE o.status = 'pending' AND o.endpoint_id = :endpoint_id
              AND o.session_id > sessions.sid {upto}
            ORDER BY o.endpoint_id, o.session_id LIMIT 1
        ), sessions.step + 1
        FROM sessions WHERE sessions.sid IS NOT NULL AND sessions.step < :steps
    ),
    heads(sid, step, hid) AS (
        SELECT sessions.sid, sessions.step, (
            SELECT p.id FROM outbox p {hint}
            WHERE p.status = 'pending' AND p.endpoint_id = :endpoint_id
              AND p.session_id >= sessions.sid AND p.session_id <= sessions.sid
            ORDER BY p.endpoint_id, p.session_id, p.id LIMIT 1
        )
        FROM sessions WHERE sessions.sid IS NOT NULL
    )
    SELECT
        heads.hid AS id,
        heads.sid AS session_id,
        heads.step AS step,
        (
            SELECT h.not_before FROM outbox h {hint}
            WHERE h.status = 'pending' AND h.endpoint_id = :endpoint_id
              AND h.session_id = heads.sid AND h.id = heads.hid
        ) AS not_before,
        (
            SELECT h.partition FROM outbox h {hint}
            WHERE h.status = 'pending' AND h.endpoint_id = :endpoint_id
              AND h.session_id = heads.sid AND h.id = heads.hid
        ) AS partition
    FROM heads
"""


def _heads_statement(dialect: str, after: bool, upto: bool) -> TextClause:
    hint = "INDEXED BY ix_outbox_pending_head" if dialect == "sqlite" else ""
    bounds = ("AND session_id > :after " if after else "") + (
        "AND session_id <= :upto" if upto else ""
    )
    return text(
        _HEADS_SQL.format(
            hint=hint, bounds=bounds, upto="AND o.session_id <= :upto" if upto else ""
        )
    )


_HEADS = {
    (dialect, after, upto): _heads_statement(dialect, after, upto)
    for dialect in ("sqlite", "postgresql")
    for after in (False, True)
    for upto in (False, True)
}
# Sessions one step of a walk visits at least (a read taking few outputs still visits
# these many: fewer, larger steps).
WALK_STEP = 64


# The pending outputs right behind a session's head, oldest first.
_BEHIND_SQL = """
    SELECT id, not_before, attempts FROM outbox {hint}
    WHERE status = 'pending' AND endpoint_id = :endpoint_id AND session_id = :session_id
      AND id > :head
    ORDER BY id LIMIT :limit
"""
_BEHIND: dict[str, TextClause] = {
    "sqlite": text(_BEHIND_SQL.format(hint="INDEXED BY ix_outbox_pending_head")),
    "postgresql": text(_BEHIND_SQL.format(hint="")),
}
# Up to ``limit`` ids of an endpoint's pending outputs, in no particular order.
_SOME_SQL = """
    SELECT id FROM outbox {hint}
    WHERE status = 'pending' AND endpoint_id = :endpoint_id {partitions}
    LIMIT :limit
"""


def _some_statement(dialect: str, by_partition: bool) -> TextClause:
    hint = "INDEXED BY ix_outbox_pending_head" if dialect == "sqlite" else ""
    partitions = "AND partition IN :partitions" if by_partition else ""
    query = text(_SOME_SQL.format(hint=hint, partitions=partitions))
    if by_partition:
        query = query.bindparams(bindparam("partitions", expanding=True))
    return query


_SOME = {
    (dialect, by_partition): _some_statement(dialect, by_partition)
    for dialect in ("sqlite", "postgresql")
    for by_partition in (False, True)
}


def some_pending(
    conn: Connection, endpoint_id: str, limit: int, partitions: Sequence[int] | None
) -> list[int]:
    """Up to ``limit`` ids of the endpoint's pending outputs (fewer: all of them), read
    from the endpoint's part of the index (not every pending output's)."""
    params: dict[str, Any] = {"endpoint_id": endpoint_id, "limit": limit}
    if partitions is not None:
        params["partitions"] = list(partitions)
    query = _SOME[conn.dialect.name, partitions is not None]
    return [int(i) for i in conn.execute(query, params).scalars()]


# PostgreSQL: the due heads of the sessions after ``:after`` (or from the first) up to
# ``:until`` (or to the last), in session order, at most ``:limit``. Each step is one seek
# in ix_outbox_pending_head (endpoint, session, id, not_before, ..., partition): the
# session's first pending entry is its head. The recursion is lazy, so it stops when the
# outer LIMIT is met (PostgreSQL evaluates a recursive WITH only as far as it is read).
_PG_HEADS_SQL = """
    WITH RECURSIVE walk(session_id, id, not_before, partition) AS (
        (
            SELECT session_id, id, not_before, partition FROM outbox
            WHERE status = 'pending' AND endpoint_id = :endpoint_id {lower} {upper}
            ORDER BY endpoint_id, session_id, id LIMIT 1
        )
        UNION ALL
        SELECT n.session_id, n.id, n.not_before, n.partition FROM walk, LATERAL (
            SELECT o.session_id, o.id, o.not_before, o.partition FROM outbox o
            WHERE o.status = 'pending' AND o.endpoint_id = :endpoint_id
              AND o.session_id > walk.session_id {upper_o}
            ORDER BY o.endpoint_id, o.session_id, o.id LIMIT 1
        ) AS n
    )
    SELECT id, session_id FROM walk
    WHERE not_before <= :now {partitions}
    LIMIT :limit
"""


def _pg_heads_statement(lower: bool, upper: bool, by_partition: bool) -> TextClause:
    query = text(
        _PG_HEADS_SQL.format(
            lower="AND session_id > :after" if lower else "",
            upper="AND session_id <= :until" if upper else "",
            upper_o="AND o.session_id <= :until" if upper else "",
            partitions="AND partition = ANY(:partitions)" if by_partition else "",
        )
    )
    if by_partition:
        query = query.bindparams(bindparam("partitions", type_=ARRAY(Integer)))
    return query


_PG_HEADS = {
    (lower, upper, by_partition): _pg_heads_statement(lower, upper, by_partition)
    for lower in (False, True)
    for upper in (False, True)
    for by_partition in (False, True)
}


class DueIds(NamedTuple):
    """What may be attempted now: due session heads (in the order the walk met them), then
    the due outputs right behind them (session by session, in order). ``heads + behind``
    keeps every session in order in any prefix of it."""

    heads: list[int]
    behind: list[int]
    # outbox id -> (not_before, attempts) of each output behind a head, as read
    behind_state: dict[int, tuple[float, int]]
    # outbox id of each output behind a head -> that head's
    head_of: dict[int, int]
    # outbox id -> session of each head
    head_sessions: dict[int, str]
    # Everything due was read: every session was visited, and fewer than ``limit`` taken.
    complete: bool = True
    # The last session visited, where the next read resumes (``None``: from the start).
    resume_after: str | None = None

    def all(self) -> list[int]:
        return self.heads + self.behind


def read_due(
    conn: Connection,
    endpoint_id: str,
    now: float,
    limit: int,
    partitions: Sequence[int] | None = None,
    after: str | None = None,
) -> DueIds:
    """Ids of the endpoint's outputs that may be attempted now, at most ``limit`` in all:
    the due heads first, then the due outputs behind them.

    Sessions are visited in order of their id, from the one after ``after`` round to it
    again, until ``limit`` due heads are found: a read costs seeks for what it takes, and
    successive reads (passing the ``resume_after`` of the last) serve every session in
    turn. Before, each read walked every session with a pending output: with a thousand
    of them, ≈ 14 ms per read (docs/performance.md, "The delivery window")."""
    if conn.dialect.name == "postgresql":
        due = _pg_due_heads(conn, endpoint_id, now, limit, partitions, after)
        # Fewer than ``limit``: the walk went round every session.
        visited_all = len(due) < limit
        last = due[-1][1] if due else after
    else:
        due, visited_all, last = _walk_due_heads(conn, endpoint_id, now, limit, partitions, after)
    heads = [head for head, _session in due]
    behind: list[int] = []
    state: dict[int, tuple[float, int]] = {}
    head_of: dict[int, int] = {}
    behind_query = _BEHIND[conn.dialect.name]
    for head, session_id in due:
        room = limit - len(heads) - len(behind)
        if room <= 0:
            break
        params = {"endpoint_id": endpoint_id, "session_id": session_id, "head": head}
        for row in conn.execute(behind_query, {**params, "limit": room}):
            if float(row.not_before) > now:
                break  # a later output waits for its retry (replayed ones may): it blocks
            behind.append(int(row.id))
            state[int(row.id)] = (float(row.not_before), int(row.attempts))
            head_of[int(row.id)] = head
    complete = visited_all and len(heads) + len(behind) < limit
    return DueIds(
        heads=heads,
        behind=behind,
        behind_state=state,
        head_of=head_of,
        head_sessions=dict(due),
        complete=complete,
        resume_after=None if visited_all else last,
    )


def _walk_due_heads(
    conn: Connection,
    endpoint_id: str,
    now: float,
    limit: int,
    partitions: Sequence[int] | None,
    after: str | None,
) -> tuple[list[tuple[int, str]], bool, str | None]:
    """SQLite: (id, session) of up to ``limit`` due heads in walk order, whether every
    session was visited, and the last session visited. Steps of ``WALK_STEP`` sessions
    and the due check here (each step is cheap in-process)."""
    owned = None if partitions is None else set(partitions)
    due: list[tuple[int, str]] = []
    steps = max(limit, WALK_STEP)
    # first from ``after`` to the end, then from the start up to ``after``
    passes: list[tuple[str | None, str | None]] = [(after, None)]
    if after is not None:
        passes.append((None, after))
    visited_all = False
    last = after
    for number, (start, upto) in enumerate(passes):
        while len(due) < limit:
            params: dict[str, Any] = {"endpoint_id": endpoint_id, "steps": steps}
            if start is not None:
                params["after"] = start
            if upto is not None:
                params["upto"] = upto
            query = _HEADS[conn.dialect.name, start is not None, upto is not None]
            rows = sorted(conn.execute(query, params).all(), key=lambda r: int(r.step))
            for row in rows:
                last = start = str(row.session_id)
                if float(row.not_before) <= now and (owned is None or row.partition in owned):
                    due.append((int(row.id), last))
                    if len(due) >= limit:
                        break
            if len(rows) < steps:
                visited_all = number == len(passes) - 1 and len(due) < limit
                break
        if len(due) >= limit:
            break
    return due, visited_all, last


def _pg_due_heads(
    conn: Connection,
    endpoint_id: str,
    now: float,
    limit: int,
    partitions: Sequence[int] | None,
    after: str | None,
) -> list[tuple[int, str]]:
    """(id, session) of up to ``limit`` due heads in walk order: the sessions after
    ``after``, then (round the end) those up to it."""
    params: dict[str, Any] = {"endpoint_id": endpoint_id, "now": now, "limit": limit}
    by_partition = partitions is not None
    if by_partition:
        params["partitions"] = list(partitions or ())
    found: list[tuple[int, str]] = []
    lower = after is not None
    rows = conn.execute(_PG_HEADS[lower, False, by_partition], {**params, "after": after})
    found += [(int(r.id), str(r.session_id)) for r in rows]
    if after is not None and len(found) < limit:
        params["limit"] = limit - len(found)
        rows = conn.execute(_PG_HEADS[False, True, by_partition], {**params, "until": after})
        found += [(int(r.id), str(r.session_id)) for r in rows]
    return found
