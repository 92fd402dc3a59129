"""The per-attempt write of the delivery side: each attempt logged, each output's state
moved, as precompiled SQL on the raw driver connection inside the group-commit writer's
transaction (like the turn's writes, ``flowhook.storage.hotpath``).

On PostgreSQL each kind of write of a group commit is one statement over arrays
(``flowhook.storage.hotpath_pg``). An output moves only from the state its row says it
was in (``pending``): an outcome recorded late (a process that lost its partition
mid-POST) never turns a delivered output back into a pending one.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection

from flowhook.delivery.types import AttemptResult, PendingDelivery
from flowhook.storage import hotpath_pg as pg
from flowhook.storage.sqlite_rows import MultiRowInsert

Outcome = tuple[PendingDelivery, AttemptResult, str, int, float]

BODY_EXCERPT_LIMIT = 1024

# SQLite: a batch's attempts as one statement per chunk of rows (sqlite_rows); PostgreSQL
# writes them as one statement over arrays (hotpath_pg).
_ATTEMPT_ROWS_SQLITE = MultiRowInsert.of(
    "INSERT INTO delivery_attempts (outbox_id, at, status, duration_ms, error, body_excerpt) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
# An outcome that moves the output on SQLite (PostgreSQL: hotpath_pg.UPDATE_OUTPUTS).
_UPDATE_OUTBOX_SQLITE = (
    "UPDATE outbox SET status = ?, attempts = ?, not_before = ?, last_status = ?, "
    "last_error = ?, finished_at = ? WHERE id = ? AND status = ?"
)
# An outcome that keeps the output pending (its retry) on SQLite: the status is not set.
# SQLite rewrites the entry of every index whose columns or condition name a column the
# UPDATE sets, changed or not; setting status to the same 'pending' rewrote two indexes
# that nothing else of a retry touches (status, id and the pending-per-partition one).
_UPDATE_RETRY_SQLITE = (
    "UPDATE outbox SET attempts = ?, not_before = ?, last_status = ?, last_error = ? "
    "WHERE id = ? AND status = ?"
)
MOVES_FROM = "pending"


class OutcomeWriter:
    """Records attempts and their outcomes on one backend (``sqlite`` or ``postgresql``)."""

    def __init__(self, backend: str) -> None:
        self._pg = backend == "postgresql"

    def record(self, conn: Connection, outcomes: Sequence[Outcome]) -> list[None]:
        cursor = raw_cursor(conn)
        attempts_rows, updates = _rows(outcomes, time.time())
        if not self._pg:
            _ATTEMPT_ROWS_SQLITE.run(cursor, attempts_rows)
            for retries, rows in _runs(updates):
                if retries:
                    cursor.executemany(_UPDATE_RETRY_SQLITE, [_retry_row(u) for u in rows])
                else:
                    cursor.executemany(_UPDATE_OUTBOX_SQLITE, rows)
            return [None] * len(outcomes)
        # Never prepared: planned at each run, from the outbox's size then. A prepared
        # statement's generic plan, chosen while the outbox was nearly empty, joined the
        # whole table (a sequential scan) and kept doing so as it grew, until an
        # autoanalyze replanned it: one full scan of the outbox per group commit
        # (tests/storage/test_pg_plans.py; docs/performance.md, "A plan chosen on an
        # empty outbox"). Planning it costs a fraction of a millisecond per commit.
        params = _pg_parameters(attempts_rows, updates)
        if params is not None:
            # The attempts with the moves, one round trip (hotpath_pg.RECORD_OUTCOMES).
            cursor.execute(pg.RECORD_OUTCOMES, params, prepare=False)
        else:
            cursor.execute(pg.INSERT_ATTEMPTS, pg.columns(attempts_rows, pg.ATTEMPT_COLUMNS))
            # Two outcomes of one output in a batch: in order, one after the other.
            for update in updates:
                cursor.execute(
                    pg.UPDATE_OUTPUTS, pg.columns([update], pg.OUTCOME_COLUMNS), prepare=False
                )
        return [None] * len(outcomes)


def outcome_parameters(outcomes: Sequence[Outcome], now: float) -> list[str] | None:
    """hotpath_pg.RECORD_OUTCOMES's parameters for these outcomes; None when one output
    has two of them (an UPDATE ... FROM changes a row once: they go one by one)."""
    return _pg_parameters(*_rows(outcomes, now))


def _pg_parameters(
    attempts_rows: list[tuple[Any, ...]], updates: list[tuple[Any, ...]]
) -> list[str] | None:
    if not all_distinct(u[-2] for u in updates):
        return None
    return [
        *pg.columns(attempts_rows, pg.ATTEMPT_COLUMNS),
        *pg.columns(updates, pg.OUTCOME_COLUMNS),
    ]


def _rows(
    outcomes: Sequence[Outcome], now: float
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The attempts' rows and the outputs' moves."""
    attempts_rows = [
        (
            item.outbox_id,
            now,
            attempt.status,
            attempt.duration_ms,
            attempt.error,
            attempt.body_excerpt[:BODY_EXCERPT_LIMIT] or None,
        )
        for item, attempt, _status, _n, _nb in outcomes
    ]
    updates = [
        (
            status,
            attempts,
            not_before,
            attempt.status,
            attempt.error,
            None if status == "pending" else now,
            item.outbox_id,
            MOVES_FROM,
        )
        for item, attempt, status, attempts, not_before in outcomes
    ]
    return attempts_rows, updates


def _runs(updates: list[tuple[Any, ...]]) -> list[tuple[bool, list[tuple[Any, ...]]]]:
    """The updates in order, in runs of retries (status stays pending) and of others: two
    outcomes of one output in a batch still apply one after the other."""
    out: list[tuple[bool, list[tuple[Any, ...]]]] = []
    for update in updates:
        retry = update[0] == MOVES_FROM
        if out and out[-1][0] == retry:
            out[-1][1].append(update)
        else:
            out.append((retry, [update]))
    return out


def _retry_row(update: tuple[Any, ...]) -> tuple[Any, ...]:
    _status, attempts, not_before, last_status, last_error, _finished, outbox_id, was = update
    return (attempts, not_before, last_status, last_error, outbox_id, was)


def all_distinct(keys: Iterable[Any]) -> bool:
    seen = set()
    for key in keys:
        if key in seen:
            return False
        seen.add(key)
    return True


def raw_cursor(conn: Connection) -> Any:
    # The DBAPI connection under the SQLAlchemy one: same transaction, no Core overhead.
    return conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
