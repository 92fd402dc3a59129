"""PostgreSQL: a group commit of the hot path's writes in two round trips.

A group commit made of accepts, turn commits and delivery outcomes only (the common case,
and the whole of a busy process's writes) goes as two simple queries (``pg_rounds``):

1. ``BEGIN``, the accept (hotpath_pg.accept_messages_sql), the turns' fence and their
   messages' update (hotpath.FENCE_AND_FINISH_PG) and the outcomes
   (hotpath_pg.RECORD_OUTCOMES): none needs another's answer;
2. the rows of the turns the fence let through (hotpath_pg.TURN_ROWS), the reply
   notifications, ``COMMIT``.

A commit without turns is one round trip. Before, the same statements went one by one
with the driver's ``BEGIN`` and ``COMMIT``: six round trips. The statements, their
answers and what the writer makes of them are the same; so is the transaction.
A batch with anything else (another kind of write, a turn that read or wrote a profile,
a session twice, an accept whose notification might not fit, an output with two outcomes)
goes the usual way, statement by statement.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any

from psycopg.pq import TransactionStatus
from sqlalchemy import Connection

from flowhook.storage import hotpath_pg as pg
from flowhook.storage.hotpath import (
    FENCE_AND_FINISH_PG,
    NOTIFY_PG,
    REPLY_CHANNEL,
    HotPath,
    Refusal,
    payloads,
)
from flowhook.storage.outcomes import all_distinct, outcome_parameters
from flowhook.storage.pg_rounds import Rounds, Statement
from flowhook.storage.records import InboundMessage, TurnCommit
from flowhook.storage.turn_rows import turn_rows
from flowhook.storage.writer import BatchFn


class CommitTogether:
    """``GroupCommitWriter.together`` for PostgreSQL with a partition owner (``HotPath``
    with ``owner``). ``prepare``: run the statements that are prepared on the usual way
    as prepared statements here too (off for a pooler that cannot keep them)."""

    def __init__(self, hot: HotPath, *, prepare: bool) -> None:
        if hot.owner is None:
            raise ValueError("a turn commit is fenced only with a partition owner")
        self._hot = hot
        self._rounds = Rounds()
        self._accept = Statement(hot.accept_sql, "flowhook_accept" if prepare else None)
        self._fence = Statement(FENCE_AND_FINISH_PG, "flowhook_fence" if prepare else None)
        self._turn_rows = Statement(pg.TURN_ROWS, "flowhook_turn_rows" if prepare else None)
        # Planned at each run, as on the usual way (flowhook.storage.outcomes).
        self._outcomes = Statement(pg.RECORD_OUTCOMES)
        self._notify = Statement(NOTIFY_PG)
        self.commits = 0  # committed this way (tests)

    def __call__(
        self, conn: Connection, runs: Sequence[tuple[BatchFn, list[Any]]]
    ) -> list[list[Any]] | None:
        """Apply and commit ``runs`` (each kind's writes, in the order of the batch's runs),
        returning each run's results; None, with nothing sent, when the batch does not go
        this way."""
        hot = self._hot
        accepts: list[InboundMessage] = []
        turns: list[TurnCommit] = []
        outcomes: list[Any] = []
        for fn, args in runs:
            if fn is hot.insert_messages:
                accepts = args
            elif fn is hot.commit_turns:
                turns = args
            elif fn is hot.record_outcomes:
                outcomes = args
            else:
                return None
        if accepts and not hot.accept_fits(accepts):
            return None
        if turns and not _plain(turns):
            return None
        now = time.time()
        outcome_params = outcome_parameters(outcomes, now) if outcomes else None
        if outcomes and outcome_params is None:
            return None
        raw = conn.connection.driver_connection
        if raw is None or raw.pgconn.transaction_status != TransactionStatus.IDLE:
            return None
        raw.autocommit = True  # the BEGIN and COMMIT are ours, sent with the statements
        try:
            self._rounds.prepare(raw, [self._accept, self._fence, self._turn_rows])
            first = [self._rounds.begin(raw)]
            if accepts:
                first.append(self._accept.text(hot.accept_parameters(accepts)))
            fence = hot.fence_parameters(turns, now) if turns else None
            if fence is not None:
                first.append(self._fence.text(fence.parameters))
            if outcome_params is not None:
                first.append(self._outcomes.text(outcome_params))
            if fence is None:
                first.append("COMMIT")
            answers = iter(self._rounds.run(raw, first)[1:])
            accepted = hot.accepted(accepts, _row(next(answers))) if accepts else []
            verdicts: list[Refusal | None] = [None] * len(turns)
            if fence is not None:
                fence.judge(_row(next(answers)), verdicts)
                committed = self._second_round(raw, turns, verdicts, now)
            else:
                committed = []
        except BaseException:
            with contextlib.suppress(Exception):
                raw.rollback()  # the writer retries each write alone, the usual way
            raise
        finally:
            with contextlib.suppress(Exception):
                raw.autocommit = False
        self.commits += 1
        out: list[list[Any]] = []
        for fn, _args in runs:
            if fn is hot.insert_messages:
                out.append(list(accepted))
            elif fn is hot.commit_turns:
                out.append(committed)
            else:
                out.append([None] * len(outcomes))
        return out

    def _second_round(
        self, raw: Any, turns: list[TurnCommit], verdicts: list[Refusal | None], now: float
    ) -> list[Any]:
        """The rows of the turns the fence let through, their reply notifications and the
        ``COMMIT``; each turn's result."""
        rows = turn_rows([t for t, v in zip(turns, verdicts, strict=True) if v is None], now)
        second = [self._turn_rows.text(rows.parameters())] if rows.any() else []
        second += [self._notify.text([REPLY_CHANNEL, chunk]) for chunk in payloads(rows.replied())]
        answers = self._rounds.run(raw, [*second, "COMMIT"])
        ids = rows.output_ids(answers[0] or []) if rows.any() else []
        return rows.results(turns, verdicts, ids)


def _plain(turns: Sequence[TurnCommit]) -> bool:
    """Turns that read and write no profile (a profile check and its writes sit between
    the fence and the rows otherwise), each session once (TURN_ROWS upserts it once)."""
    if any(t.profile_version is not None or t.profile is not None for t in turns):
        return False
    return all_distinct((t.endpoint_id, t.session_id) for t in turns if t.state is not None)


def _row(answer: list[Any] | None) -> Sequence[Any]:
    """The one row a statement of the first round returns."""
    if not answer:
        raise ValueError("a statement of the group commit returned no row")
    return tuple(answer[0])
