"""A user's profile stays exact when the user's sessions run in different processes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import psycopg
import pytest

from flowhook.cluster.partitions import partition_of
from tests.support import postgres
from tests.support.cluster import start_cluster, stop_all
from tests.support.webhooks import WebhookReceiver

pytestmark = pytest.mark.postgres

ADMIN = "cluster-profiles-admin-token"
COUNTER_FLOW = """
name: counter
nodes:
  count:
    type: set
    profile:
      visits: "{{ (profile.visits or 0) + 1 }}"
    next: tell
  tell:
    type: say
    text: "visit {{ profile.visits }}"
"""
SESSIONS = 6
PER_SESSION = 15


@pytest.fixture
def cluster_db() -> Iterator[str]:
    """A scratch PostgreSQL database of its own, dropped afterwards."""
    url, name = postgres.create_scratch_database()
    try:
        yield url
    finally:
        postgres.drop_database(name)


def owners(url: str, endpoint_id: str, sessions: list[str]) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT owner FROM partition_leases WHERE partition = ANY(%s)",
            ([partition_of(endpoint_id, s) for s in sessions],),
        ).fetchall()
    return {str(r[0]) for r in rows}


async def test_profile_updates_from_two_processes_are_never_lost(
    tmp_path: Path, cluster_db: str
) -> None:
    """One user, several sessions whose partitions two processes own between them,
    messages posted to both at once: every turn sees the profile the previous turn of the
    user left (the loser of a race is refused at commit and runs again), so the counter
    ends at the number of messages and every visit number is seen exactly once."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "counter.yaml").write_text(COUNTER_FLOW)
    hook = WebhookReceiver()
    await hook.start()
    nodes = await start_cluster(
        tmp_path,
        count=2,
        flows_dir=flows,
        db_url=cluster_db,
        admin_token=ADMIN,
        extra={"FLOWHOOK_LEASE_SECONDS": "3"},
    )
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{nodes[0].base}/api/v1/endpoints",
                json={"name": "c", "flow": "counter", "webhookUrl": hook.url},
                headers={"Authorization": f"Bearer {ADMIN}"},
            ) as resp:
                assert resp.status == 201
                ep = await resp.json()
            sessions = [f"s{i}" for i in range(SESSIONS)]
            # Both processes hold partitions of this user's sessions (bounded wait for the
            # second process to get its share).
            for _ in range(200):
                if len(owners(cluster_db, ep["id"], sessions)) == 2:
                    break
                await asyncio.sleep(0.1)
            assert len(owners(cluster_db, ep["id"], sessions)) == 2

            async def one_session(i: int) -> None:
                for n in range(PER_SESSION):
                    node = nodes[(i + n) % 2]
                    url = f"{node.base}/endpoint/{ep['urlToken']}"
                    body = {"userId": "alice", "sessionId": sessions[i], "text": str(n)}
                    async with http.post(url, json=body) as resp:
                        assert resp.status == 202

            await asyncio.gather(*(one_session(i) for i in range(SESSIONS)))
        total = SESSIONS * PER_SESSION
        await hook.wait_until(lambda: len(hook.unique_accepted()) >= total, timeout=60)
    finally:
        await asyncio.to_thread(stop_all, nodes)
        await hook.stop()
    visits = sorted(int(h.text.split()[1]) for h in hook.unique_accepted())
    assert visits == list(range(1, total + 1))
    with psycopg.connect(cluster_db) as conn:
        row = conn.execute("SELECT data, version FROM profiles WHERE user_id = 'alice'").fetchone()
    assert row is not None
    assert row[0] == f'{{"visits":{total}}}'
    assert row[1] == total
