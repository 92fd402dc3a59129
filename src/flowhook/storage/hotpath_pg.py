"""PostgreSQL: each kind of per-message write of a group commit as ONE statement.

``executemany`` sends one statement per row (pipelined, so one round trip, but each
row is still parsed, planned, executed and answered on its own, and costs psycopg a
Python-level send and fetch). Here the rows of a kind go as one array per column and
are expanded on the server with ``unnest``: one execution per batch whatever its size.
Measured per message in ``bench turnpath --backend postgres`` (docs/performance.md).

Where the order of generated ids matters (messages: a session's messages must get ids
in the order they were accepted), the rows are inserted ``ORDER BY`` their position in
the arrays; outbox ids are matched back by their unique delivery id.
"""

# Every statement here is built once, at import, from the constant column lists below.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

MESSAGE_COLUMNS = (
    ("endpoint_id", "text"),
    ("session_id", "text"),
    ("user_id", "text"),
    ("trace_id", "text"),
    ("text", "text"),
    ("data", "text"),
    ("received_at", "float8"),
    ("kind", "text"),
    ("client_ip", "text"),
    ("partition", "int4"),
)


def _unnest(columns: Sequence[tuple[str, str]], *, ordinality: bool = False) -> str:
    arrays = ", ".join(f"%s::{kind}[]" for _, kind in columns)
    names = ", ".join(name for name, _ in columns)
    if ordinality:
        return f"unnest({arrays}) WITH ORDINALITY AS v({names}, n)"
    return f"unnest({arrays}) AS v({names})"


def _names(columns: Sequence[tuple[str, str]]) -> str:
    return ", ".join(f"v.{name}" for name, _ in columns)


def insert_messages_sql(*, with_txid: bool) -> str:
    """Messages in array order, ids returned in that order. ``with_txid``: the accepting
    transaction's id goes with each (several processes: incremental scans)."""
    names = ", ".join(name for name, _ in MESSAGE_COLUMNS)
    txid = "pg_current_xact_id()::text::bigint" if with_txid else "NULL"
    return (
        f"INSERT INTO messages ({names}, status, txid) "
        f"SELECT {_names(MESSAGE_COLUMNS)}, 'pending', {txid} "
        f"FROM {_unnest(MESSAGE_COLUMNS, ordinality=True)} ORDER BY v.n RETURNING id"
    )


# The accept in one round trip: the configuration generation read, the insert of the
# messages checked under it (a message checked under another one is left out: the ingress
# checks it again), and with several processes the notification of what was inserted.
# One statement, one snapshot: the read holds for every message after it, as when it was
# a statement of its own in the same transaction. The notification is a CTE the final
# SELECT reads, so it runs; its payload is the one ``HotPath`` would build ("partition:id"
# in id order after the sender), and only batches whose payload surely fits go this way.
# Parameters: one array per MESSAGE_COLUMNS, the generations checked (NULL: none), then,
# with the notification, the channel and the sender prefix. Returns one row: the stored
# generation, and the new ids in insertion order (NULL when none).
def accept_messages_sql(*, with_txid: bool, notify: bool) -> str:
    names = ", ".join(name for name, _ in MESSAGE_COLUMNS)
    txid = "pg_current_xact_id()::text::bigint" if with_txid else "NULL"
    arrays = ", ".join(f"%s::{kind}[]" for _, kind in MESSAGE_COLUMNS)
    inserted = (
        "WITH g AS (SELECT number FROM meta WHERE name = 'config_generation'), "
        f"ins AS (INSERT INTO messages ({names}, status, txid) "
        f"SELECT {_names(MESSAGE_COLUMNS)}, 'pending', {txid} "
        f"FROM unnest({arrays}, %s::int8[]) WITH ORDINALITY AS v({names}, checked, n) "
        "WHERE v.checked IS NULL OR v.checked = (SELECT number FROM g) "
        "ORDER BY v.n RETURNING id, partition)"
    )
    if not notify:
        return (
            inserted + " SELECT (SELECT number FROM g), (SELECT array_agg(id ORDER BY id) FROM ins)"
        )
    return (
        inserted + ", sent AS (SELECT pg_notify(%s, %s || string_agg("
        "partition::text || ':' || id::text, ',' ORDER BY id)) FROM ins HAVING count(*) > 0) "
        "SELECT (SELECT number FROM g), (SELECT array_agg(id ORDER BY id) FROM ins), "
        "(SELECT count(*) FROM sent)"
    )


# Notified in the accept's statement only when the payload surely fits PostgreSQL's 8000
# bytes ("partition:id," is at most 3 + 1 + 19 + 1 characters; the sender prefix apart).
ACCEPT_NOTIFY_MAX_BYTES = 7000
NOTIFY_ENTRY_MAX_BYTES = 24


SESSION_COLUMNS = (
    ("endpoint_id", "text"),
    ("session_id", "text"),
    ("user_id", "text"),
    ("state", "text"),
    ("created_at", "float8"),
    ("updated_at", "float8"),
)
# One row per session in the batch (ON CONFLICT cannot touch a row twice in one statement).
UPSERT_SESSIONS = (
    "INSERT INTO sessions (endpoint_id, session_id, user_id, state, turns, created_at, "
    f"updated_at) SELECT v.endpoint_id, v.session_id, v.user_id, v.state, 1, v.created_at, "
    f"v.updated_at FROM {_unnest(SESSION_COLUMNS)} "
    "ON CONFLICT (endpoint_id, session_id) DO UPDATE SET user_id = excluded.user_id, "
    "state = excluded.state, turns = sessions.turns + 1, updated_at = excluded.updated_at"
)

TRANSCRIPT_COLUMNS = (
    ("endpoint_id", "text"),
    ("session_id", "text"),
    ("user_id", "text"),
    ("direction", "text"),
    ("source", "text"),
    ("text", "text"),
    ("data", "text"),
    ("trace_id", "text"),
    ("client_ip", "text"),
    ("at", "float8"),
)
INSERT_TRANSCRIPTS = (
    f"INSERT INTO transcripts ({', '.join(n for n, _ in TRANSCRIPT_COLUMNS)}) "
    f"SELECT {_names(TRANSCRIPT_COLUMNS)} FROM {_unnest(TRANSCRIPT_COLUMNS)}"
)

STATS_COLUMNS = (
    ("endpoint_id", "text"),
    ("session_id", "text"),
    ("at", "float8"),
    ("turn_ms", "float8"),
    ("intent", "text"),
    ("handover", "bool"),
    ("outputs", "int4"),
)
INSERT_STATS = (
    f"INSERT INTO turn_stats ({', '.join(n for n, _ in STATS_COLUMNS)}) "
    f"SELECT {_names(STATS_COLUMNS)} FROM {_unnest(STATS_COLUMNS)}"
)

OUTPUT_COLUMNS = (
    ("delivery_id", "text"),
    ("endpoint_id", "text"),
    ("session_id", "text"),
    ("message_id", "int8"),
    ("created_at", "float8"),
    ("partition", "int4"),
)
# The outbox rows and their bodies (schema.outbox_bodies) in one statement. The rows are
# inserted in array order; each body goes with the id its row got, looked up by the unique
# delivery id in one map built from what the insert returned (an InitPlan, evaluated
# once). The body arrays are expanded in the select list (a ProjectSet streams them):
# in FROM, or hashed for a join, or in a WITH read twice, PostgreSQL first copied every
# body of the batch into a tuplestore or hash table, written to temporary files past
# work_mem (64 outputs of 100 KiB: 6 to 13 MB of temporary files per commit). The bodies'
# insert runs to completion whether or not the outer SELECT reads it (a data-modifying
# WITH). Parameters: one array per OUTPUT_COLUMNS, then the delivery ids and the bodies
# (``output_parameters``).
INSERT_OUTPUTS = (
    "WITH ins AS (INSERT INTO outbox (delivery_id, endpoint_id, session_id, message_id, "
    "status, attempts, not_before, created_at, partition) "
    "SELECT v.delivery_id, v.endpoint_id, v.session_id, v.message_id, 'pending', 0, 0, "
    f"v.created_at, v.partition FROM {_unnest(OUTPUT_COLUMNS, ordinality=True)} "
    "ORDER BY v.n RETURNING id, delivery_id), "
    "bodies AS (INSERT INTO outbox_bodies (outbox_id, body) "
    "SELECT ((SELECT jsonb_object_agg(delivery_id, id) FROM ins) ->> b.delivery_id)::bigint, "
    "b.body FROM (SELECT unnest(%s::text[]) AS delivery_id, unnest(%s::text[]) AS body) AS b) "
    "SELECT id, delivery_id FROM ins"
)


# A turn commit's rows in one round trip: the sessions, transcripts and statistics as
# data-modifying WITH clauses (each runs whether or not it is read; empty arrays insert
# nothing), then the outputs and their bodies, whose ids the statement returns. The tables
# are distinct and nothing here reads another clause's rows, so running the clauses in
# one snapshot changes nothing they write. The sessions clause needs each session once
# (ON CONFLICT touches a row once per statement): a batch with a session twice keeps the
# statements apart. Parameters: SESSION_COLUMNS, TRANSCRIPT_COLUMNS and STATS_COLUMNS
# arrays, then ``output_parameters``.
TURN_ROWS = (
    f"WITH s AS ({UPSERT_SESSIONS}), tr AS ({INSERT_TRANSCRIPTS}), st AS ({INSERT_STATS}), "
    + INSERT_OUTPUTS.removeprefix("WITH ")
)


def output_parameters(rows: Sequence[Sequence[Any]]) -> list[str]:
    """INSERT_OUTPUTS's parameters for rows of OUTPUT_COLUMNS followed by the body."""
    arrays = columns(rows, OUTPUT_COLUMNS)
    return [*arrays, arrays[0], text_array([row[len(OUTPUT_COLUMNS)] for row in rows])]


ATTEMPT_COLUMNS = (
    ("outbox_id", "int8"),
    ("at", "float8"),
    ("status", "int4"),
    ("duration_ms", "float8"),
    ("error", "text"),
    ("body_excerpt", "text"),
)
INSERT_ATTEMPTS = (
    f"INSERT INTO delivery_attempts ({', '.join(n for n, _ in ATTEMPT_COLUMNS)}) "
    f"SELECT {_names(ATTEMPT_COLUMNS)} FROM {_unnest(ATTEMPT_COLUMNS)}"
)

OUTCOME_COLUMNS = (
    ("status", "text"),
    ("attempts", "int4"),
    ("not_before", "float8"),
    ("last_status", "int4"),
    ("last_error", "text"),
    ("finished_at", "float8"),
    ("id", "int8"),
    ("was", "text"),
)
# One row per output in the batch (an UPDATE ... FROM changes a row once). A row moves only
# from the status it was read in (``was``: pending). That status comes as a column, not a
# constant: with ``status = 'pending'`` PostgreSQL may serve ``id = v.id`` from a partial
# index of pending outputs whose leading key is not the id, reading all of it per row
# (``EXPLAIN``: ``Index Cond: (id = v.id)`` on ix_outbox_pending_due); a status it cannot
# prove pending rules those indexes out, and (status, id) or the primary key is descended.
UPDATE_OUTPUTS = (
    "UPDATE outbox AS o SET status = v.status, attempts = v.attempts, "
    "not_before = v.not_before, last_status = v.last_status, last_error = v.last_error, "
    f"finished_at = v.finished_at FROM {_unnest(OUTCOME_COLUMNS)} "
    "WHERE o.id = v.id AND o.status = v.was"
)

# A group commit's outcomes in one round trip: the attempts as a data-modifying WITH,
# the outbox rows' moves as the statement (different tables; neither reads the other).
# Parameters: ATTEMPT_COLUMNS arrays, then OUTCOME_COLUMNS arrays.
RECORD_OUTCOMES = f"WITH a AS ({INSERT_ATTEMPTS}) {UPDATE_OUTPUTS}"

_INT_KINDS = {"int4", "int8"}


def columns(rows: Sequence[Sequence[Any]], kinds: Sequence[tuple[str, str]]) -> list[str]:
    """The rows as one array per column, each written as PostgreSQL's array literal (the
    statements cast each parameter to its array type).

    Written here rather than by psycopg: its array dumper escapes each quote of a text
    element through ``re.sub`` with a template, about 40 µs per JSON body or data value
    (8 % of a busy one-process server's samples in ``bench run --profile``, run
    ``20261130T224410Z``); this is about 1.5 µs."""
    out: list[str] = []
    for i, (_name, kind) in enumerate(kinds):
        values = [row[i] for row in rows]
        if kind == "text":
            out.append(text_array(values))
        elif kind in _INT_KINDS:
            out.append(_array(["NULL" if v is None else str(int(v)) for v in values]))
        elif kind == "float8":
            out.append(_array(["NULL" if v is None else repr(float(v)) for v in values]))
        elif kind == "bool":
            out.append(_array(["NULL" if v is None else ("t" if v else "f") for v in values]))
        else:
            raise ValueError(f"no array literal for {kind}")
    return out


def array_of(values: Sequence[Any], kind: str) -> str:
    """One array literal of ``kind`` (as in ``columns``)."""
    return columns([(v,) for v in values], (("value", kind),))[0]


# The messages a turn commit finishes (hotpath.FENCE_AND_FINISH_PG).
FINISH_COLUMNS = (
    ("id", "int8"),
    ("partition", "int4"),
    ("epoch", "int8"),
    ("status", "text"),
    ("reply", "text"),
    ("error", "text"),
)


def text_array(values: Sequence[Any]) -> str:
    """A text[] literal: each element double-quoted, its backslashes and double quotes
    escaped with a backslash (nothing else is special inside quotes); NULL unquoted."""
    return _array(
        [
            "NULL" if v is None else '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
            for v in values
        ]
    )


def _array(elements: list[str]) -> str:
    return "{" + ",".join(elements) + "}"
