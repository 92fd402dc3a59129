"""The per-message writes, as precompiled SQL on the raw driver connection.

These writes run for every message (accept, turn; the delivery outcome's are in
``flowhook.storage.outcomes``, the runs counted of read-back messages in
``flowhook.storage.run_counts``). Going
through SQLAlchemy Core cost about 200 µs per message in statement compilation,
parameter processing and result wrapping (measured with py-spy, see
docs/performance.md); the same statements on the DBAPI cursor, batched with
``executemany``, cost a fraction of that. They still run inside the transaction
of the SQLAlchemy connection the group-commit writer owns, and commit with it.

Only the placeholder style differs between backends: ``?`` for sqlite3, ``%s``
for psycopg. The SQL itself is portable (``ON CONFLICT ... DO UPDATE`` and
``RETURNING`` exist in both).
"""

from __future__ import annotations

import enum
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection

from flowhook.cluster.partitions import partition_of
from flowhook.delivery.types import PendingDelivery
from flowhook.storage import hotpath_pg as pg
from flowhook.storage.outcomes import OutcomeWriter, raw_cursor
from flowhook.storage.records import InboundMessage, TurnCommit
from flowhook.storage.run_counts import RunCounter
from flowhook.storage.sqlite_rows import MultiRowInsert
from flowhook.storage.turn_rows import turn_rows

# SQLite: each kind of insert of a batch as one statement per chunk of rows (sqlite_rows).
# PostgreSQL writes each kind as one statement over arrays (hotpath_pg).
_MESSAGE_ROWS_SQLITE = MultiRowInsert.of(
    "INSERT INTO messages (endpoint_id, session_id, user_id, trace_id, text, data, "
    "received_at, kind, client_ip, partition, status) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')"
)
# A turn finishes its message only if it is still pending: a message run twice (read
# back as pending while its first turn committed) cannot commit a second turn.
# A finished message keeps no text or data: nothing reads them once its turn committed
# (the transcript keeps them when the endpoint stores transcripts). Keeping them made
# SQLite copy the whole row, overflow pages and all, to change its status: 200 KiB of log
# for a 100 KiB message (docs/performance.md, "Where a healthy output waits").
_FINISH_MESSAGE = (
    "UPDATE messages SET status = {p}, processed_at = {p}, reply = {p}, error = {p}, "
    "text = NULL, data = NULL WHERE id = {p} AND status = 'pending'"
)
# The same for a whole batch in one statement (PostgreSQL): the ids it returns are the
# turns that may commit.
# The partition with the id: the lookup descends the partial index of pending messages by
# (partition, id) instead of walking it (docs/architecture.md, "PostgreSQL cost per message").
_FINISH_MESSAGES_PG = (
    "UPDATE messages AS m SET status = v.status, processed_at = %s, reply = v.reply, "
    "error = v.error, text = NULL, data = NULL "
    "FROM unnest(%s::bigint[], %s::int[], %s::text[], %s::text[], %s::text[]) "
    "AS v(id, partition, status, reply, error) "
    "WHERE m.partition = v.partition AND m.id = v.id AND m.status = 'pending' RETURNING m.id"
)
# The fence: the leases this process still holds, locked (FOR SHARE) until the commit so
# that nobody can take them over between this check and the commit.
_HELD_LEASES_PG = (
    "SELECT partition, epoch FROM partition_leases WHERE partition = ANY(%s) AND owner = %s "
    "AND expires_at > extract(epoch from clock_timestamp()) FOR SHARE"
)
# The fence and the messages' update in one round trip, for a batch in which no turn read
# a profile (a profile check sits between the two otherwise): the leases held, locked as
# above, and the update of the messages whose turn ran under a lease still held. Returns
# the held leases ("partition:epoch") and the ids the update finished.
FENCE_AND_FINISH_PG = (
    "WITH held AS (SELECT partition, epoch FROM partition_leases "
    "WHERE partition = ANY(%s::int[]) AND owner = %s::text "
    "AND expires_at > extract(epoch from clock_timestamp()) FOR SHARE), "
    "fin AS (UPDATE messages AS m SET status = v.status, processed_at = %s::float8, "
    "reply = v.reply, "
    "error = v.error, text = NULL, data = NULL "
    "FROM unnest(%s::bigint[], %s::int[], %s::int8[], %s::text[], %s::text[], %s::text[]) "
    "AS v(id, partition, epoch, status, reply, error) "
    "WHERE m.partition = v.partition AND m.id = v.id AND m.status = 'pending' "
    "AND EXISTS (SELECT 1 FROM held AS h WHERE h.partition = v.partition "
    "AND h.epoch = v.epoch) RETURNING m.id) "
    "SELECT (SELECT array_agg(partition::text || ':' || epoch::text) FROM held), "
    "(SELECT array_agg(id) FROM fin)"
)
NOTIFY_PG = "SELECT pg_notify(%s, %s)"
# payload: the committing worker's id, "|", then "partition:id" of each message committed,
# comma-separated, in id order
INBOX_CHANNEL = "flowhook_inbox"
REPLY_CHANNEL = "flowhook_reply"  # payload: ids of rest messages whose outputs are stored
_UPSERT_SESSION = (
    "INSERT INTO sessions (endpoint_id, session_id, user_id, state, turns, created_at, "
    "updated_at) VALUES ({p}, {p}, {p}, {p}, 1, {p}, {p}) "
    "ON CONFLICT (endpoint_id, session_id) DO UPDATE SET user_id = excluded.user_id, "
    "state = excluded.state, turns = sessions.turns + 1, updated_at = excluded.updated_at"
)
_UPSERT_PROFILE = (
    "INSERT INTO profiles (endpoint_id, user_id, data, updated_at, version) "
    "VALUES ({p}, {p}, {p}, {p}, 1) "
    "ON CONFLICT (endpoint_id, user_id) DO UPDATE SET data = excluded.data, "
    "updated_at = excluded.updated_at, version = profiles.version + 1"
)
# The first profile of a user, written by a turn that saw none: if another process wrote
# one meanwhile, nothing changes (rowcount 0) and the batch is retried turn by turn.
_CREATE_PROFILE_PG = (
    "INSERT INTO profiles (endpoint_id, user_id, data, updated_at, version) "
    "VALUES (%s, %s, %s, %s, 1) ON CONFLICT (endpoint_id, user_id) DO NOTHING"
)
# Several processes: the versions of the profiles the batch's turns read, locked until
# the commit (a user's sessions may lie in partitions owned by other processes).
_PROFILE_VERSIONS_PG = (
    "SELECT p.endpoint_id, p.user_id, p.version FROM profiles AS p "
    "JOIN unnest(%s::text[], %s::text[]) AS k(endpoint_id, user_id) "
    "ON p.endpoint_id = k.endpoint_id AND p.user_id = k.user_id "
    # One lock order for every process, so two batches never wait on each other.
    "ORDER BY p.endpoint_id, p.user_id FOR UPDATE OF p"
)
_SESSION_ROWS_SQLITE = MultiRowInsert.of(_UPSERT_SESSION.format(p="?"))
_TRANSCRIPT_ROWS_SQLITE = MultiRowInsert.of(
    "INSERT INTO transcripts (endpoint_id, session_id, user_id, direction, source, text, data, "
    "trace_id, client_ip, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_STATS_ROWS_SQLITE = MultiRowInsert.of(
    "INSERT INTO turn_stats (endpoint_id, session_id, at, turn_ms, intent, handover, outputs) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_OUTPUT_ROWS_SQLITE = MultiRowInsert.of(
    "INSERT INTO outbox (delivery_id, endpoint_id, session_id, message_id, status, "
    "attempts, not_before, created_at, partition) "
    "VALUES (?, ?, ?, ?, 'pending', 0, 0, ?, ?)"
)
# The body apart from the row whose state each attempt changes (schema.outbox_bodies).
_BODY_ROWS_SQLITE = MultiRowInsert.of("INSERT INTO outbox_bodies (outbox_id, body) VALUES (?, ?)")
_READ_GENERATION = "SELECT number FROM meta WHERE name = 'config_generation'"


@dataclass(frozen=True, slots=True)
class ConfigChanged:
    """A message was not inserted: endpoints or keys changed since the ingress checked
    it (``generation`` is the stored configuration generation now)."""

    generation: int


class Refusal(enum.Enum):
    """Why a turn was not committed (nothing of it was written)."""

    LEASE_LOST = "the process no longer holds the lease of the session's partition"
    ALREADY_PROCESSED = "the message was already processed by an earlier turn"
    PROFILE_CHANGED = "the user's profile changed since the turn read it"


class ProfileRace(Exception):
    """Two processes created a user's first profile at once: retry the batch turn by turn
    (the check before the writes then refuses the turn that lost)."""


class TurnRefused(Exception):
    """A turn's commit was refused; nothing of it was written."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.value)
        self.refusal = refusal


class HotPath:
    """The batch write functions for one backend.

    Each public method is a ``BatchFn`` for the group-commit writer. They are bound
    once, at construction, so the writer sees the same function object for every
    write of a kind and can hand adjacent writes to one ``executemany``.

    ``owner`` (PostgreSQL shared by several processes): this process's worker id. Turn
    commits are then fenced by its partition leases, and new messages and stored
    replies are announced with NOTIFY in the transaction that commits them.
    """

    def __init__(self, backend: str, *, owner: str | None = None) -> None:
        self._pg = backend == "postgresql"
        self._insert_messages_pg = pg.insert_messages_sql(with_txid=owner is not None)
        self.accept_sql = pg.accept_messages_sql(
            with_txid=owner is not None, notify=owner is not None
        )
        self._owner = owner if backend == "postgresql" else None
        self.owner = self._owner
        p = "%s" if backend == "postgresql" else "?"
        self._finish_message = _FINISH_MESSAGE.format(p=p)
        self._upsert_session = _UPSERT_SESSION.format(p=p)
        self._upsert_profile = _UPSERT_PROFILE.format(p=p)
        self.insert_messages = self._insert_messages
        self.commit_turns = self._commit_turns
        self.record_outcomes = OutcomeWriter(backend).record
        self.count_attempts = RunCounter(backend).count
        self._read_generation = _READ_GENERATION

    def _many_returning(
        self,
        cursor: Any,
        sql: str,
        kinds: Sequence[tuple[str, str]],
        rows: list[tuple[Any, ...]],
    ) -> list[int]:
        """PostgreSQL: insert the rows in one statement, their new ids in row order."""
        if not rows:
            return []
        cursor.execute(sql, pg.columns(rows, kinds))
        return [int(r[0]) for r in cursor.fetchall()]

    def _insert_messages(
        self, conn: Connection, msgs: Sequence[InboundMessage]
    ) -> list[int | ConfigChanged]:
        """Insert the messages; one checked under an older configuration generation than
        the stored one is not inserted (its result is ConfigChanged): the ingress checks
        it again against the changed configuration. One read per batch, in the same
        transaction, so a change committed before it holds for every message after."""
        cursor = raw_cursor(conn)
        if self._pg and self.accept_fits(msgs):
            return self._accept_pg_at_once(cursor, msgs)
        current: int | None = None
        if any(m.generation is not None for m in msgs):
            cursor.execute(self._read_generation)
            current = int(cursor.fetchone()[0])
        fresh = [m for m in msgs if m.generation is None or m.generation == current]
        return _accept_results(msgs, current or 0, self._insert_fresh(cursor, fresh))

    def accept_fits(self, msgs: Sequence[InboundMessage]) -> bool:
        """Whether one statement can accept these (its notification surely fits)."""
        if self._owner is None:
            return True
        size = len(self._owner) + 1 + len(msgs) * pg.NOTIFY_ENTRY_MAX_BYTES
        return size <= pg.ACCEPT_NOTIFY_MAX_BYTES

    def _accept_pg_at_once(
        self, cursor: Any, msgs: Sequence[InboundMessage]
    ) -> list[int | ConfigChanged]:
        """``_insert_messages`` on PostgreSQL in one round trip (hotpath_pg.accept_messages_sql)
        instead of three: the generation read, the insert and the notification."""
        cursor.execute(self.accept_sql, self.accept_parameters(msgs))
        return self.accepted(msgs, cursor.fetchone())

    def accept_parameters(self, msgs: Sequence[InboundMessage]) -> list[Any]:
        """``accept_sql``'s parameters for ``msgs``."""
        params: list[Any] = [*pg.columns(self._message_rows(msgs), pg.MESSAGE_COLUMNS)]
        params.append(pg.array_of([m.generation for m in msgs], "int8"))
        if self._owner is not None:
            params += [INBOX_CHANNEL, self._owner + "|"]
        return params

    def accepted(
        self, msgs: Sequence[InboundMessage], answer: Sequence[Any]
    ) -> list[int | ConfigChanged]:
        """Per message, from ``accept_sql``'s one row: its id or ConfigChanged."""
        current, ids = answer[:2]
        return _accept_results(msgs, int(current), [int(i) for i in ids or ()])

    def _message_rows(self, msgs: Sequence[InboundMessage]) -> list[tuple[Any, ...]]:
        return [
            (
                m.endpoint_id,
                m.session_id,
                m.user_id,
                m.trace_id,
                m.text,
                None if m.data is None else orjson.dumps(m.data).decode(),
                m.received_at,
                m.kind,
                m.client_ip,
                partition_of(m.endpoint_id, m.session_id),
            )
            for m in msgs
        ]

    def _insert_fresh(self, cursor: Any, msgs: Sequence[InboundMessage]) -> list[int]:
        rows = self._message_rows(msgs)
        if self._pg:
            ids = self._many_returning(cursor, self._insert_messages_pg, pg.MESSAGE_COLUMNS, rows)
        else:
            ids = _MESSAGE_ROWS_SQLITE.run_returning_ids(cursor, rows)
        if self._owner is not None and rows:
            # Delivered with the commit, in commit order: the owners run these messages in
            # that order (flowhook.cluster.scanner), the accepting process too. The ids
            # ascend in row order (one statement after the other, one sequence).
            announced = [f"{row[-1]}:{i}" for row, i in zip(rows, ids, strict=True)]
            sender = self._owner + "|"
            for chunk in payloads(announced, limit=7000 - len(sender)):
                cursor.execute(NOTIFY_PG, (INBOX_CHANNEL, sender + chunk))
        return ids

    def _commit_turns(
        self, conn: Connection, batch: Sequence[TurnCommit]
    ) -> list[list[PendingDelivery] | Refusal]:
        cursor = raw_cursor(conn)
        now = time.time()
        verdicts: list[Refusal | None] = [None] * len(batch)
        if self._owner is not None and all(t.profile_version is None for t in batch):
            self._fence_and_finish(cursor, batch, verdicts, now)
        else:
            if self._owner is not None:
                self._fence(cursor, batch, verdicts)
                self._check_profiles(cursor, batch, verdicts)
            self._finish_messages(cursor, batch, verdicts, now)
        rows = turn_rows([t for t, v in zip(batch, verdicts, strict=True) if v is None], now)
        # PostgreSQL: sessions, transcripts, statistics and outputs in one statement below
        # (hotpath_pg.TURN_ROWS), unless a session comes twice.
        at_once = self._pg and rows.sessions_distinct()
        if rows.sessions and self._pg and not at_once:
            cursor.executemany(self._upsert_session, rows.sessions)
        elif rows.sessions and not self._pg:
            _SESSION_ROWS_SQLITE.run(cursor, rows.sessions)
        self._write_profiles(cursor, rows.turns, now)
        if rows.transcript and self._pg and not at_once:
            cursor.execute(
                pg.INSERT_TRANSCRIPTS, pg.columns(rows.transcript, pg.TRANSCRIPT_COLUMNS)
            )
        elif rows.transcript and not self._pg:
            _TRANSCRIPT_ROWS_SQLITE.run(cursor, rows.transcript)
        if rows.stats and self._pg and not at_once:
            cursor.execute(pg.INSERT_STATS, pg.columns(rows.stats, pg.STATS_COLUMNS))
        elif rows.stats and not self._pg:
            _STATS_ROWS_SQLITE.run(cursor, rows.stats)
        if at_once and rows.any():
            cursor.execute(pg.TURN_ROWS, rows.parameters())
            ids = rows.output_ids(cursor.fetchall())
        elif self._pg and rows.output_rows:
            # One statement writes the rows and their bodies (hotpath_pg.INSERT_OUTPUTS).
            cursor.execute(pg.INSERT_OUTPUTS, pg.output_parameters(rows.output_rows))
            ids = rows.output_ids(cursor.fetchall())
        elif self._pg:
            ids = []
        else:
            ids = _OUTPUT_ROWS_SQLITE.run_returning_ids(cursor, [r[:-1] for r in rows.output_rows])
            if ids:
                bodies = [(oid, row[-1]) for oid, row in zip(ids, rows.output_rows, strict=True)]
                _BODY_ROWS_SQLITE.run(cursor, bodies)
        if self._owner is not None:
            for chunk in payloads(rows.replied()):
                cursor.execute(NOTIFY_PG, (REPLY_CHANNEL, chunk))
        return rows.results(batch, verdicts, ids)

    def _fence(
        self, cursor: Any, batch: Sequence[TurnCommit], verdicts: list[Refusal | None]
    ) -> None:
        """Refuse the turns whose partition lease this process lost (or holds anew)."""
        parts = [partition_of(t.endpoint_id, t.session_id) for t in batch]
        cursor.execute(_HELD_LEASES_PG, (sorted(set(parts)), self._owner))
        held = {(int(p), int(epoch)) for p, epoch in cursor.fetchall()}
        _refuse_lost_leases(batch, parts, held, verdicts)

    def _fence_and_finish(
        self,
        cursor: Any,
        batch: Sequence[TurnCommit],
        verdicts: list[Refusal | None],
        now: float,
    ) -> None:
        """``_fence`` then ``_finish_messages`` in one statement (_FENCE_AND_FINISH_PG)."""
        fence = self.fence_parameters(batch, now)
        cursor.execute(FENCE_AND_FINISH_PG, fence.parameters)
        fence.judge(cursor.fetchone(), verdicts)

    def fence_parameters(self, batch: Sequence[TurnCommit], now: float) -> Fence:
        """What FENCE_AND_FINISH_PG is sent for ``batch`` (none of its turns refused yet)."""
        parts = [partition_of(t.endpoint_id, t.session_id) for t in batch]
        rows = _finish_rows(batch, [None] * len(batch))  # every turn with a message
        return Fence(
            batch,
            parts,
            rows,
            [
                pg.array_of(sorted(set(parts)), "int4"),
                self._owner,
                now,
                *pg.columns(
                    [(r[1], parts[r[0]], batch[r[0]].epoch, r[2], r[3], r[4]) for r in rows],
                    pg.FINISH_COLUMNS,
                ),
            ],
        )

    def _check_profiles(
        self, cursor: Any, batch: Sequence[TurnCommit], verdicts: list[Refusal | None]
    ) -> None:
        """Refuse the turns that read a profile version another process has replaced."""
        readers = [
            (i, t)
            for i, t in enumerate(batch)
            if verdicts[i] is None and t.profile_version is not None
        ]
        if not readers:
            return
        cursor.execute(
            _PROFILE_VERSIONS_PG,
            ([t.endpoint_id for _, t in readers], [t.user_id for _, t in readers]),
        )
        current = {(str(e), str(u)): int(v) for e, u, v in cursor.fetchall()}
        for i, t in readers:
            if current.get((t.endpoint_id, t.user_id), 0) != t.profile_version:
                verdicts[i] = Refusal.PROFILE_CHANGED

    def _write_profiles(self, cursor: Any, turns: Sequence[TurnCommit], now: float) -> None:
        rows = [
            (t.endpoint_id, t.user_id, orjson.dumps(t.profile).decode(), now, t.profile_version)
            for t in turns
            if t.profile is not None
        ]
        if not rows:
            return
        if self._owner is None:
            cursor.executemany(self._upsert_profile, [row[:4] for row in rows])
            return
        # Existing profiles are locked by the check: update them. A first profile may
        # race with another process's first profile of the same user.
        updates = [row[:4] for row in rows if row[4] != 0]
        if updates:
            cursor.executemany(self._upsert_profile, updates)
        for row in sorted(rows):
            if row[4] == 0:
                cursor.execute(_CREATE_PROFILE_PG, row[:4])
                if cursor.rowcount != 1:
                    raise ProfileRace

    def _finish_messages(
        self,
        cursor: Any,
        batch: Sequence[TurnCommit],
        verdicts: list[Refusal | None],
        now: float,
    ) -> None:
        """Mark the turns' messages processed; refuse the turns whose message was not pending."""
        rows = _finish_rows(batch, verdicts)
        if not rows:
            return
        if self._pg:
            cursor.execute(
                _FINISH_MESSAGES_PG,
                (
                    now,
                    [r[1] for r in rows],
                    [partition_of(batch[r[0]].endpoint_id, batch[r[0]].session_id) for r in rows],
                    [r[2] for r in rows],
                    [r[3] for r in rows],
                    [r[4] for r in rows],
                ),
            )
            _refuse_unfinished(rows, {int(r[0]) for r in cursor.fetchall()}, verdicts)
            return
        for i, message_id, status, reply, error in rows:
            cursor.execute(self._finish_message, (status, now, reply, error, message_id))
            if cursor.rowcount != 1:
                verdicts[i] = Refusal.ALREADY_PROCESSED


def _accept_results(
    msgs: Sequence[InboundMessage], current: int, ids: Sequence[int]
) -> list[int | ConfigChanged]:
    """Per message: ConfigChanged when it was checked under another generation than the
    stored ``current``, else the next of ``ids`` (those inserted, in order)."""
    inserted = iter(ids)
    return [
        ConfigChanged(current)
        if m.generation is not None and m.generation != current
        else next(inserted)
        for m in msgs
    ]


# (position in the batch, message id, new status, reply JSON, error) of a turn's message
FinishRow = tuple[int, int, str, str | None, str | None]


def _finish_rows(
    batch: Sequence[TurnCommit], verdicts: Sequence[Refusal | None]
) -> list[FinishRow]:
    """The messages to mark processed: those of the turns with a message not yet refused."""
    return [
        (
            i,
            t.message_id,
            "failed" if t.failed else "done",
            None if t.reply is None else orjson.dumps(t.reply).decode(),
            t.error,
        )
        for i, t in enumerate(batch)
        if verdicts[i] is None and t.message_id
    ]


def _refuse_unfinished(
    rows: Sequence[FinishRow], finished: set[int], verdicts: list[Refusal | None]
) -> None:
    """Refuse the turns, not refused already, whose message the update did not finish; of
    two turns of one message in a batch the second is refused."""
    for i, message_id, _status, _reply, _error in rows:
        if verdicts[i] is not None:
            continue
        if message_id in finished:
            finished.discard(message_id)
        else:
            verdicts[i] = Refusal.ALREADY_PROCESSED


@dataclass(frozen=True, slots=True)
class Fence:
    """A batch's fence and messages' update (FENCE_AND_FINISH_PG): its parameters, and
    the verdicts its answer gives."""

    batch: Sequence[TurnCommit]
    parts: list[int]
    rows: list[FinishRow]
    parameters: list[Any]

    def judge(self, answer: Sequence[Any], verdicts: list[Refusal | None]) -> None:
        """Refuse the turns whose lease is lost or whose message was not finished, from the
        statement's one row (held leases as "partition:epoch", the ids it finished)."""
        held_rows, finished_ids = answer
        held = {(int(p), int(e)) for p, e in (pair.split(":") for pair in held_rows or ())}
        _refuse_lost_leases(self.batch, self.parts, held, verdicts)
        _refuse_unfinished(self.rows, {int(x) for x in finished_ids or ()}, verdicts)


def _refuse_lost_leases(
    batch: Sequence[TurnCommit],
    parts: Sequence[int],
    held: set[tuple[int, int]],
    verdicts: list[Refusal | None],
) -> None:
    """Refuse the turns that ran under a lease (partition, epoch) this process no longer
    holds."""
    for i, (t, part) in enumerate(zip(batch, parts, strict=True)):
        if (part, t.epoch) not in held:
            verdicts[i] = Refusal.LEASE_LOST


def payloads(items: list[str], limit: int = 7000) -> list[str]:
    """Comma-separated NOTIFY payloads, each under PostgreSQL's 8000-byte limit."""
    out: list[str] = []
    current: list[str] = []
    size = 0
    for item in items:
        if current and size + len(item) + 1 > limit:
            out.append(",".join(current))
            current, size = [], 0
        current.append(item)
        size += len(item) + 1
    if current:
        out.append(",".join(current))
    return out
