"""The per-message writes, as precompiled SQL on the raw driver connection.

These three writes run for every message (accept, turn, delivery outcome). Going
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

import time
import uuid
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Connection

from flowhook.delivery.types import AttemptResult, PendingDelivery
from flowhook.storage.records import InboundMessage, TurnCommit

Outcome = tuple[PendingDelivery, AttemptResult, str, int, float]

_INSERT_MESSAGE = (
    "INSERT INTO messages (endpoint_id, session_id, user_id, trace_id, text, data, "
    "received_at, kind, client_ip, status) "
    "VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, 'pending')"
)
_FINISH_MESSAGE = "UPDATE messages SET status = {p}, processed_at = {p} WHERE id = {p}"
_UPSERT_SESSION = (
    "INSERT INTO sessions (endpoint_id, session_id, user_id, state, turns, created_at, "
    "updated_at) VALUES ({p}, {p}, {p}, {p}, 1, {p}, {p}) "
    "ON CONFLICT (endpoint_id, session_id) DO UPDATE SET user_id = excluded.user_id, "
    "state = excluded.state, turns = sessions.turns + 1, updated_at = excluded.updated_at"
)
_UPSERT_PROFILE = (
    "INSERT INTO profiles (endpoint_id, user_id, data, updated_at) VALUES ({p}, {p}, {p}, {p}) "
    "ON CONFLICT (endpoint_id, user_id) DO UPDATE SET data = excluded.data, "
    "updated_at = excluded.updated_at"
)
_INSERT_TRANSCRIPT = (
    "INSERT INTO transcripts (endpoint_id, session_id, user_id, direction, source, text, data, "
    "trace_id, client_ip, at) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})"
)
_INSERT_STATS = (
    "INSERT INTO turn_stats (endpoint_id, session_id, at, turn_ms, intent, handover, outputs) "
    "VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p})"
)
_INSERT_OUTPUT = (
    "INSERT INTO outbox (delivery_id, endpoint_id, session_id, message_id, body, status, "
    "attempts, not_before, created_at) VALUES ({p}, {p}, {p}, {p}, {p}, 'pending', 0, 0, {p})"
)
_INSERT_ATTEMPT = (
    "INSERT INTO delivery_attempts (outbox_id, at, status, duration_ms, error, body_excerpt) "
    "VALUES ({p}, {p}, {p}, {p}, {p}, {p})"
)
_UPDATE_OUTBOX = (
    "UPDATE outbox SET status = {p}, attempts = {p}, not_before = {p}, last_status = {p}, "
    "last_error = {p}, finished_at = {p} WHERE id = {p}"
)

BODY_EXCERPT_LIMIT = 1024
# Outbox rows for an endpoint's handover provider carry this before the endpoint id:
# the dispatcher keeps them in order in their own lane and resolves the provider's URL.
HANDOVER_PREFIX = "handover:"


def new_delivery_id() -> str:
    return "msg_" + uuid.uuid4().hex


class HotPath:
    """The batch write functions for one backend.

    Each public method is a ``BatchFn`` for the group-commit writer. They are bound
    once, at construction, so the writer sees the same function object for every
    write of a kind and can hand adjacent writes to one ``executemany``.
    """

    def __init__(self, backend: str) -> None:
        self._returning_many = backend == "postgresql"
        p = "%s" if backend == "postgresql" else "?"
        self._insert_message = _INSERT_MESSAGE.format(p=p)
        self._finish_message = _FINISH_MESSAGE.format(p=p)
        self._upsert_session = _UPSERT_SESSION.format(p=p)
        self._upsert_profile = _UPSERT_PROFILE.format(p=p)
        self._insert_transcript = _INSERT_TRANSCRIPT.format(p=p)
        self._insert_stats = _INSERT_STATS.format(p=p)
        self._insert_output = _INSERT_OUTPUT.format(p=p)
        self._insert_attempt = _INSERT_ATTEMPT.format(p=p)
        self._update_outbox = _UPDATE_OUTBOX.format(p=p)
        self.insert_messages = self._insert_messages
        self.commit_turns = self._commit_turns
        self.record_outcomes = self._record_outcomes

    def _insert_rows(self, cursor: Any, sql: str, rows: list[tuple[Any, ...]]) -> list[int]:
        """Insert rows, returning their new ids in row order."""
        if not rows:
            return []
        if self._returning_many:
            cursor.executemany(sql + " RETURNING id", rows, returning=True)
            ids = []
            while True:
                ids.append(int(cursor.fetchone()[0]))
                if not cursor.nextset():
                    return ids
        # sqlite3: executemany cannot return ids, but a single execute in C is cheap
        # and lastrowid is exact (one writer, one connection).
        out = []
        for row in rows:
            cursor.execute(sql, row)
            out.append(int(cursor.lastrowid))
        return out

    def _insert_messages(self, conn: Connection, msgs: Sequence[InboundMessage]) -> list[int]:
        rows = [
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
            )
            for m in msgs
        ]
        return self._insert_rows(_cursor(conn), self._insert_message, rows)

    def _commit_turns(
        self, conn: Connection, turns: Sequence[TurnCommit]
    ) -> list[list[PendingDelivery]]:
        cursor = _cursor(conn)
        now = time.time()
        finished = [
            ("failed" if t.failed else "done", now, t.message_id) for t in turns if t.message_id
        ]
        if finished:
            cursor.executemany(self._finish_message, finished)
        cursor.executemany(
            self._upsert_session,
            [
                (t.endpoint_id, t.session_id, t.user_id, orjson.dumps(t.state).decode(), now, now)
                for t in turns
            ],
        )
        profiles = [
            (t.endpoint_id, t.user_id, orjson.dumps(t.profile).decode(), now)
            for t in turns
            if t.profile is not None
        ]
        if profiles:
            cursor.executemany(self._upsert_profile, profiles)
        transcript = [
            (
                t.endpoint_id,
                t.session_id,
                t.user_id,
                e.direction,
                e.source,
                e.text,
                None if e.data is None else orjson.dumps(e.data).decode(),
                e.trace_id,
                e.client_ip,
                now,
            )
            for t in turns
            for e in t.transcript
        ]
        if transcript:
            cursor.executemany(self._insert_transcript, transcript)
        stats = [
            (
                t.endpoint_id,
                t.session_id,
                now,
                t.stats.turn_ms,
                t.stats.intent,
                t.stats.handover,
                t.stats.outputs,
            )
            for t in turns
            if t.stats is not None
        ]
        if stats:
            cursor.executemany(self._insert_stats, stats)
        outputs = [(t, t.endpoint_id, body, new_delivery_id()) for t in turns for body in t.bodies]
        outputs += [
            (t, HANDOVER_PREFIX + t.endpoint_id, body, new_delivery_id())
            for t in turns
            for body in t.handover_events
        ]
        ids = self._insert_rows(
            cursor,
            self._insert_output,
            [
                (did, target, t.session_id, t.message_id or None, body.decode(), now)
                for t, target, body, did in outputs
            ],
        )
        per_turn: dict[int, list[PendingDelivery]] = {}
        for (t, target, body, did), oid in zip(outputs, ids, strict=True):
            per_turn.setdefault(id(t), []).append(
                PendingDelivery(
                    outbox_id=oid,
                    delivery_id=did,
                    endpoint_id=target,
                    session_id=t.session_id,
                    seq=oid,
                    body=body,
                )
            )
        return [per_turn.get(id(t), []) for t in turns]

    def _record_outcomes(self, conn: Connection, outcomes: Sequence[Outcome]) -> list[None]:
        cursor = _cursor(conn)
        now = time.time()
        cursor.executemany(
            self._insert_attempt,
            [
                (
                    item.outbox_id,
                    now,
                    attempt.status,
                    attempt.duration_ms,
                    attempt.error,
                    attempt.body_excerpt[:BODY_EXCERPT_LIMIT] or None,
                )
                for item, attempt, _status, _n, _nb in outcomes
            ],
        )
        cursor.executemany(
            self._update_outbox,
            [
                (
                    status,
                    attempts,
                    not_before,
                    attempt.status,
                    attempt.error,
                    None if status == "pending" else now,
                    item.outbox_id,
                )
                for item, attempt, status, attempts, not_before in outcomes
            ],
        )
        return [None] * len(outcomes)


def _cursor(conn: Connection) -> Any:
    # The DBAPI connection under the SQLAlchemy one: same transaction, no Core overhead.
    return conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
