"""Three `flowhook serve` processes on one PostgreSQL database, one of them killed with
SIGKILL in the middle of a burst posted to all three: every message has exactly one turn
and one output, every output reaches a real receiver, every session in order."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest
from yarl import URL

from tests.support import postgres
from tests.support.cluster import Node, start_cluster, stop_all
from tests.support.webhooks import WebhookReceiver

REPO = Path(__file__).resolve().parents[2]
NODES = 3
SESSIONS = 300
PER_SESSION = 10
KILL_AFTER = 1500  # accepted messages before the SIGKILL
VICTIM = 1  # the second process
ADMIN = "cluster-kill-admin-token"
CLUSTER_ENV = {
    "FLOWHOOK_ROLE": "both",
    "FLOWHOOK_LEASE_SECONDS": "3",
    "FLOWHOOK_SCAN_SECONDS": "1",
}
POST_TIMEOUT = 20.0  # one ingress post
LOAD_TIMEOUT = 120.0  # the whole burst
DELIVERY_TIMEOUT = 90.0  # every accepted message delivered, after the burst
SETTLE_TIMEOUT = 30.0  # nothing pending in the database, after that


@pytest.fixture
def cluster_db() -> Iterator[str]:
    """A scratch PostgreSQL database of its own, dropped afterwards (under CI=true an
    unreachable server fails the test, see tests/support/postgres.py)."""
    url, name = postgres.create_scratch_database()
    try:
        yield url
    finally:
        postgres.drop_database(name)


@dataclass
class Load:
    """What the clients know: per session, the (number, traceId) of each 202 in order, and
    the numbers whose post failed (connection error or non-202: outcome unknown)."""

    accepted: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    unknown: dict[str, set[int]] = field(default_factory=dict)
    failures: list[tuple[str, int, str]] = field(default_factory=list)  # session, node, why
    accepted_by: Counter[int] = field(default_factory=Counter)
    accepted_after_kill: Counter[int] = field(default_factory=Counter)
    count: int = 0
    down: set[int] = field(default_factory=set)
    killed: bool = False

    def target(self, i: int, n: int) -> int:
        """Session i sends message n to node (i + n) % 3, or the next one still up."""
        for k in range(NODES):
            node = (i + n + k) % NODES
            if node not in self.down:
                return node
        raise AssertionError(f"every node is down: {self.failures[-10:]}")


def db_rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, connect_timeout=5) as conn:
        return conn.execute(sql).fetchall()


def pending_counts(url: str) -> tuple[int, int]:
    [(messages, outbox)] = db_rows(
        url,
        "SELECT (SELECT count(*) FROM messages WHERE status = 'pending'), "
        "(SELECT count(*) FROM outbox WHERE status = 'pending')",
    )
    return int(messages), int(outbox)


def tails(nodes: list[Node]) -> str:
    return "\n".join(node.tail() for node in nodes)


async def run_load(nodes: list[Node], path: str, load: Load) -> None:
    """Every session posts its messages one after the other (each 202 awaited before the
    next), the sessions concurrently; SIGKILL the victim after KILL_AFTER accepted."""
    victim = nodes[VICTIM]
    timeout = aiohttp.ClientTimeout(total=POST_TIMEOUT)
    connector = aiohttp.TCPConnector(limit=100)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:

        async def one_session(i: int) -> None:
            session = f"s{i:03d}"
            load.accepted[session] = []
            load.unknown[session] = set()
            for n in range(PER_SESSION):
                to = load.target(i, n)
                body = {"userId": f"u{i}", "sessionId": session, "text": str(n), "data": {"n": n}}
                trace: str | None = None
                why = ""
                try:
                    async with http.post(f"{nodes[to].base}{path}", json=body) as resp:
                        if resp.status == 202:
                            trace = str((await resp.json())["traceId"])
                        else:
                            why = f"{resp.status} {(await resp.text())[:200]}"
                except (TimeoutError, aiohttp.ClientError) as exc:
                    why = repr(exc)
                    load.down.add(to)  # skip it from now on
                if trace is None:
                    load.unknown[session].add(n)
                    load.failures.append((session, to, why))
                    continue
                load.accepted[session].append((n, trace))
                load.accepted_by[to] += 1
                if load.killed:
                    load.accepted_after_kill[to] += 1
                load.count += 1
                if load.count == KILL_AFTER:
                    os.kill(victim.pid, signal.SIGKILL)
                    load.killed = True

        async with asyncio.timeout(LOAD_TIMEOUT):
            await asyncio.gather(*(one_session(i) for i in range(SESSIONS)))


@pytest.mark.postgres
async def test_sigkill_of_one_of_three_processes_loses_nothing_and_duplicates_nothing(
    tmp_path: Path, cluster_db: str
) -> None:
    """Three processes on one PostgreSQL database take 3000 messages of 300 sessions, each
    session posting to all three in turn; one process is killed with SIGKILL halfway and
    its partitions are taken over by the other two. Afterwards: every message answered 202
    was delivered to the receiver; every webhook-id carries one trace and no trace has two
    webhook-ids (exactly one output per message); each session's outputs arrived in the
    order its messages were accepted (unknown-outcome ones at most in place, none twice);
    in the database every message is done with exactly one turn and one output, and every
    output is delivered and was received."""
    hook = WebhookReceiver()
    await hook.start()
    nodes: list[Node] = []
    load = Load()
    try:
        nodes = await start_cluster(
            tmp_path,
            count=NODES,
            flows_dir=REPO / "flows",
            db_url=cluster_db,
            admin_token=ADMIN,
            extra=CLUSTER_ENV,
        )
        first = nodes[0]
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=POST_TIMEOUT)) as http,
            http.post(
                f"{first.base}/api/v1/endpoints",
                json={"name": "cluster", "flow": "echo", "webhookUrl": hook.url},
                headers={"Authorization": f"Bearer {ADMIN}"},
            ) as resp,
        ):
            assert resp.status == 201, await resp.text()
            created = await resp.json()
        endpoint_url = URL(created["endpointUrl"])
        assert endpoint_url.port == first.port
        assert endpoint_url.path.startswith("/endpoint/")

        await run_load(nodes, endpoint_url.path, load)

        # the kill happened, the victim died of it, the others live on and kept accepting
        assert load.killed, f"only {load.count} accepted\n{load.failures[:20]}"
        victim = nodes[VICTIM]
        await asyncio.to_thread(victim.proc.popen.wait, 10)
        assert victim.proc.popen.returncode == -signal.SIGKILL
        survivors = [i for i in range(NODES) if i != VICTIM]
        assert all(nodes[i].running() for i in survivors), tails(nodes)
        assert all(load.accepted_by[i] > 0 for i in range(NODES)), load.accepted_by
        assert all(load.accepted_after_kill[i] > 0 for i in survivors), load.accepted_after_kill
        assert load.count > KILL_AFTER
        assert sum(len(m) for m in load.accepted.values()) == load.count

        # (1) every accepted message delivered (bounded wait)
        by_trace = {t: (s, n) for s, msgs in load.accepted.items() for n, t in msgs}
        delivered: set[str] = set()
        scanned = 0

        def all_delivered() -> bool:
            nonlocal scanned
            for hit in hook.accepted[scanned:]:
                delivered.add(str(hit.body["AIOutput"]["traceId"]))
            scanned = len(hook.accepted)
            return by_trace.keys() <= delivered

        with contextlib.suppress(TimeoutError):
            await hook.wait_until(all_delivered, timeout=DELIVERY_TIMEOUT)
        missing = by_trace.keys() - delivered
        assert not missing, (
            f"{len(missing)} of {len(by_trace)} accepted messages not delivered within "
            f"{DELIVERY_TIMEOUT}s, e.g. {sorted(by_trace[t] for t in missing)[:10]}\n{tails(nodes)}"
        )

        # let unknown-outcome messages that did commit finish too (bounded)
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while (pending := await asyncio.to_thread(pending_counts, cluster_db)) != (0, 0):
            assert time.monotonic() < deadline, (
                f"still pending after {SETTLE_TIMEOUT}s (messages, outbox): {pending}\n"
                f"{tails(nodes)}"
            )
            await asyncio.sleep(0.25)
        assert all(nodes[i].running() for i in survivors), tails(nodes)

        messages = await asyncio.to_thread(
            db_rows, cluster_db, "SELECT id, session_id, trace_id, status FROM messages"
        )
        sessions = await asyncio.to_thread(
            db_rows, cluster_db, "SELECT session_id, turns FROM sessions"
        )
        outbox = await asyncio.to_thread(
            db_rows,
            cluster_db,
            "SELECT delivery_id, session_id, message_id, status, endpoint_id FROM outbox",
        )
    finally:
        await asyncio.to_thread(stop_all, nodes)
        await hook.stop()

    # (2) one trace per webhook-id, one webhook-id per trace: exactly one output a message
    traces_of: dict[str, set[str]] = {}
    for hit in hook.accepted:
        traces_of.setdefault(hit.webhook_id, set()).add(str(hit.body["AIOutput"]["traceId"]))
    several = {w: t for w, t in traces_of.items() if len(t) != 1}
    assert not several, f"webhook-ids with several traces: {list(several.items())[:5]}"
    unique = hook.unique_accepted()
    traces = Counter(str(h.body["AIOutput"]["traceId"]) for h in unique)
    twice = [t for t, c in traces.items() if c > 1]
    assert not twice, f"{len(twice)} messages with several outputs, e.g. {twice[:5]}"

    # (3) per session: strictly increasing, accepted ones in acceptance order, all known
    seen: dict[str, list[int]] = {}
    for hit in unique:
        n = int(hit.text.removeprefix("You said: "))
        assert hit.text == f"You said: {n}"
        trace = str(hit.body["AIOutput"]["traceId"])
        if trace in by_trace:
            assert by_trace[trace] == (hit.session, n), (trace, hit.session, n)
        seen.setdefault(hit.session, []).append(n)
    assert seen.keys() <= load.accepted.keys()
    for session, msgs in load.accepted.items():
        numbers = seen.get(session, [])
        assert all(a < b for a, b in itertools.pairwise(numbers)), (
            f"{session} out of order or twice: {numbers}"
        )
        ours = [n for n, _t in msgs]
        assert [n for n in numbers if n in set(ours)] == ours, (session, numbers, ours)
        assert set(numbers) <= set(ours) | load.unknown[session], (
            f"{session} got outputs for messages never posted: {numbers}"
        )

    # (4) the database: every message done, one turn each, one delivered output each
    statuses = Counter(str(status) for _id, _s, _t, status in messages)
    assert statuses == Counter({"done": len(messages)}), statuses
    message_traces = [str(t) for _id, _s, t, _st in messages]
    assert len(message_traces) == len(set(message_traces)), "a message stored twice"
    assert by_trace.keys() <= set(message_traces)
    per_session = Counter(str(s) for _id, s, _t, _st in messages)
    turns = {str(s): int(t) for s, t in sessions}
    assert turns == dict(per_session), {
        s: (turns.get(s), per_session.get(s))
        for s in turns.keys() | per_session.keys()
        if turns.get(s) != per_session.get(s)
    }
    assert {str(e) for *_rest, e in outbox} == {str(created["id"])}
    outbox_statuses = Counter(str(status) for _d, _s, _m, status, _e in outbox)
    assert outbox_statuses == Counter({"delivered": len(outbox)}), outbox_statuses
    assert Counter(str(s) for _d, s, _m, _st, _e in outbox) == per_session
    assert sorted(int(m) for _d, _s, m, _st, _e in outbox) == sorted(
        int(i) for i, _s, _t, _st in messages
    ), "not exactly one output per message"
    # every output in the outbox reached the receiver, and nothing else did
    assert {str(d) for d, *_rest in outbox} == {h.webhook_id for h in unique}
    assert set(traces) == set(message_traces)
