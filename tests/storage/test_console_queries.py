"""The console's reads on both backends: per-day counts split at UTC midnight, delivery
health per endpoint, and session search that treats % and _ as plain characters."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert

from flowhook.console.queries import DAY, ConsoleQueries
from flowhook.storage import schema as t
from flowhook.storage.store import SqlStore

MIDNIGHT = 20_000 * DAY  # a UTC midnight


async def _insert(store: SqlStore, table: Any, rows: list[dict[str, Any]]) -> None:
    def run(c: Connection) -> None:
        c.execute(insert(table), rows)

    await store.transact(run)


def _stat(at: float, outputs: int = 1, endpoint: str = "e1") -> dict[str, Any]:
    return {
        "endpoint_id": endpoint,
        "session_id": "s",
        "at": at,
        "turn_ms": 5.0,
        "intent": None,
        "handover": False,
        "outputs": outputs,
    }


async def test_per_day_counts_split_at_utc_midnight(store: SqlStore) -> None:
    """A turn 0.3 s before midnight counts on the earlier day, one 0.7 s before too (no
    rounding into the next day), one at midnight on the later day; other endpoints and
    turns outside the range do not count; days without turns are zeros."""
    await _insert(
        store,
        t.turn_stats,
        [
            _stat(MIDNIGHT - 0.3, 2),
            _stat(MIDNIGHT - 0.7, 1),
            _stat(MIDNIGHT, 3),
            _stat(MIDNIGHT + 0.5, 1, endpoint="e2"),
            _stat(MIDNIGHT + 2 * DAY + 5, 1),
            _stat(MIDNIGHT - 3 * DAY, 1),
        ],
    )
    days = await ConsoleQueries(store).per_day("e1", MIDNIGHT - DAY, MIDNIGHT + 2 * DAY)
    assert [(d["day"], d["in"], d["out"]) for d in days] == [
        (MIDNIGHT - DAY, 2, 3),
        (MIDNIGHT, 1, 3),
        (MIDNIGHT + DAY, 0, 0),
    ]


def _outbox(n: int, endpoint: str, status: str, created: float) -> dict[str, Any]:
    return {
        "delivery_id": f"msg_{endpoint}_{n}",
        "endpoint_id": endpoint,
        "session_id": "s",
        "body": "{}",
        "status": status,
        "attempts": 1,
        "not_before": 0.0,
        "created_at": created,
    }


async def test_delivery_health_per_endpoint(store: SqlStore) -> None:
    """Outcomes of the last day per endpoint, the whole queue however old, and the
    oldest pending output; finished outputs older than a day do not count."""
    now = MIDNIGHT + 1000
    await _insert(
        store,
        t.outbox,
        [
            _outbox(1, "e1", "delivered", now - 10),
            _outbox(2, "e1", "delivered", now - 20),
            _outbox(3, "e1", "failed", now - 30),
            _outbox(4, "e1", "failed", now - 2 * DAY),
            _outbox(5, "e1", "pending", now - 3 * DAY),
            _outbox(6, "e1", "pending", now - 5),
            _outbox(7, "e2", "pending", now - 7),
        ],
    )
    health = await ConsoleQueries(store).delivery_health(now=now)
    e1, e2 = health["e1"], health["e2"]
    assert (e1.delivered, e1.failed, e1.pending) == (2, 1, 2)
    assert e1.success_rate == 2 / 3
    assert e1.oldest_pending_at == now - 3 * DAY
    assert (e2.pending, e2.success_rate) == (1, None)


async def test_session_search_matches_prefixes_literally(store: SqlStore) -> None:
    """Searching 'a%' finds only ids starting with 'a%' (not every 'a…'), '_' is no
    wildcard, user ids match too, and the most recently active session comes first."""
    rows = [
        ("a%1", "u1", 3.0),
        ("ab", "u2", 2.0),
        ("a_c", "u3", 1.0),
        ("x", "a%user", 4.0),
    ]
    await _insert(
        store,
        t.sessions,
        [
            {
                "endpoint_id": "e1",
                "session_id": sid,
                "user_id": uid,
                "state": "{}",
                "turns": 1,
                "created_at": 0.0,
                "updated_at": at,
            }
            for sid, uid, at in rows
        ],
    )
    queries = ConsoleQueries(store)
    assert [s.session_id for s in await queries.sessions("e1", search="a%")] == ["x", "a%1"]
    assert [s.session_id for s in await queries.sessions("e1", search="a_")] == ["a_c"]
    assert len(await queries.sessions("e1")) == 4
    assert await queries.sessions("e2") == []
