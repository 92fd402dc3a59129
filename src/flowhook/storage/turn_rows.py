"""The rows a batch of committed turns writes: sessions, transcript entries, statistics
and outputs, built once for whichever way they are sent (one statement per kind, or
PostgreSQL's TURN_ROWS in one statement, alone or with the rest of a group commit).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from flowhook.cluster.partitions import HANDOVER_PREFIX, partition_of
from flowhook.delivery.types import PendingDelivery
from flowhook.ids import uuid7_hex
from flowhook.storage import hotpath_pg as pg
from flowhook.storage.outcomes import all_distinct
from flowhook.storage.records import TurnCommit


def new_delivery_id() -> str:
    """Time-ordered (flowhook.ids.uuid7_hex): outputs append to the delivery id index."""
    return "msg_" + uuid7_hex()


# (turn, target endpoint, body, delivery id) of each output
Output = tuple[TurnCommit, str, bytes, str]


@dataclass(slots=True)
class TurnRows:
    turns: list[TurnCommit]  # the turns that commit
    sessions: list[tuple[Any, ...]]
    transcript: list[tuple[Any, ...]]
    stats: list[tuple[Any, ...]]
    outputs: list[Output]
    output_rows: list[tuple[Any, ...]]  # OUTPUT_COLUMNS, then the body

    def any(self) -> bool:
        return bool(self.sessions or self.transcript or self.stats or self.output_rows)

    def sessions_distinct(self) -> bool:
        """Whether each session comes once (TURN_ROWS upserts each session once)."""
        return all_distinct(s[:2] for s in self.sessions)

    def parameters(self) -> list[str]:
        """hotpath_pg.TURN_ROWS's parameters."""
        return [
            *pg.columns(self.sessions, pg.SESSION_COLUMNS),
            *pg.columns(self.transcript, pg.TRANSCRIPT_COLUMNS),
            *pg.columns(self.stats, pg.STATS_COLUMNS),
            *pg.output_parameters(self.output_rows),
        ]

    def output_ids(self, returned: Sequence[Sequence[Any]]) -> list[int]:
        """The outputs' new ids in output order, from the (id, delivery id) rows the
        insert returned."""
        by_delivery = {str(did): int(oid) for oid, did in returned}
        return [by_delivery[did] for _t, _target, _body, did in self.outputs]

    def replied(self) -> list[str]:
        """The ids of the rest messages whose outputs this commit stores."""
        return [str(t.message_id) for t in self.turns if t.reply is not None and t.message_id]

    def results(
        self, batch: Sequence[TurnCommit], verdicts: Sequence[Any], ids: Sequence[int]
    ) -> list[Any]:
        """Per turn of the batch: its refusal, or the deliveries of its outputs."""
        per_turn: dict[int, list[PendingDelivery]] = {}
        for (t, target, body, did), oid in zip(self.outputs, ids, strict=True):
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
        return [
            per_turn.get(id(t), []) if verdict is None else verdict
            for t, verdict in zip(batch, verdicts, strict=True)
        ]


def turn_rows(turns: list[TurnCommit], now: float) -> TurnRows:
    """The rows of ``turns`` (those that commit), stamped ``now``."""
    sessions = [
        (t.endpoint_id, t.session_id, t.user_id, orjson.dumps(t.state).decode(), now, now)
        for t in turns
        if t.state is not None
    ]
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
    outputs: list[Output] = [
        (t, t.endpoint_id, body, new_delivery_id()) for t in turns for body in t.bodies
    ]
    outputs += [
        (t, HANDOVER_PREFIX + t.endpoint_id, body, new_delivery_id())
        for t in turns
        for body in t.handover_events
    ]
    output_rows = [
        (
            did,
            target,
            t.session_id,
            t.message_id or None,
            now,
            partition_of(t.endpoint_id, t.session_id),
            body.decode(),
        )
        for t, target, body, did in outputs
    ]
    return TurnRows(turns, sessions, transcript, stats, outputs, output_rows)
