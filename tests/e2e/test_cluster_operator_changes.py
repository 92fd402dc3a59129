"""Operator changes hold from the very next request, in every process, whichever tool
made them: two `flowhook serve` processes on one PostgreSQL database, changes made
through one process's admin API or the CLI (a third process), each followed at once,
with no wait, by a request to the other process."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests.support import postgres
from tests.support.cluster import Node, start_cluster, stop_all
from tests.support.receiver import Receiver

pytestmark = pytest.mark.postgres

REPO = Path(__file__).resolve().parents[2]
ADMIN = "operator-changes-admin-token"


@pytest.fixture
def cluster_db() -> Iterator[str]:
    url, name = postgres.create_scratch_database()
    try:
        yield url
    finally:
        postgres.drop_database(name)


@pytest.fixture
async def nodes(tmp_path: Path, cluster_db: str) -> AsyncIterator[list[Node]]:
    started = await start_cluster(
        tmp_path,
        count=2,
        flows_dir=REPO / "flows",
        db_url=cluster_db,
        admin_token=ADMIN,
        extra={"FLOWHOOK_LEASE_SECONDS": "2", "FLOWHOOK_SCAN_SECONDS": "1"},
    )
    try:
        yield started
    finally:
        await asyncio.to_thread(stop_all, started)


async def api(
    http: aiohttp.ClientSession, node: Node, method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    async with http.request(
        method,
        node.base + path,
        json=body,
        headers={"Authorization": f"Bearer {ADMIN}"},
    ) as resp:
        return resp.status, await resp.json(content_type=None) if resp.content_length else None


async def post(
    http: aiohttp.ClientSession, node: Node, token: str, text: str, key: str | None = None
) -> int:
    headers = {"X-Webhook-Key": key} if key else {}
    body = {"userId": "u", "sessionId": "s", "text": text}
    async with http.post(f"{node.base}/endpoint/{token}", json=body, headers=headers) as resp:
        await resp.read()
        return resp.status


async def cli(node: Node, *args: str) -> subprocess.CompletedProcess[str]:
    """The `flowhook` command as its own process, on the cluster's database and key."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "flowhook", *args],
        env=node.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_each_change_holds_on_the_next_request_in_the_other_process(
    nodes: list[Node], receiver: Receiver
) -> None:
    """Key revocation (CLI and API), a new webhook URL and password (CLI), deactivation
    (CLI), reactivation (API) and deletion (API and CLI), each checked at once at the
    other process; after deletion its metrics no longer name the endpoint."""
    one, two = nodes
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:
        status, ep = await api(
            http,
            one,
            "POST",
            "/api/v1/endpoints",
            {
                "name": "ops",
                "flow": "echo",
                "webhookUrl": receiver.url.replace("/hook", "/a"),
                "webhookUser": "bot",
                "webhookPassword": "first",
                "authMethod": "apiKey",
            },
        )
        assert status == 201, ep
        token, eid = ep["urlToken"], ep["id"]
        keys = []
        for name in ("cli", "api"):
            status, key = await api(
                http, one, "POST", f"/api/v1/endpoints/{eid}/api-keys", {"name": name}
            )
            assert status == 201
            keys.append(key)
        # Both processes have the endpoint and both keys cached now.
        for node in (one, two):
            for key in keys:
                assert await post(http, node, token, "warm", key["key"]) == 202

        revoked = await cli(one, "keys", "revoke", eid, keys[0]["id"])
        assert revoked.returncode == 0, revoked.stderr
        assert await post(http, two, token, "after cli revoke", keys[0]["key"]) == 401
        assert await post(http, one, token, "after cli revoke", keys[0]["key"]) == 401

        status, _ = await api(
            http, one, "DELETE", f"/api/v1/endpoints/{eid}/api-keys/{keys[1]['id']}"
        )
        assert status == 204
        assert await post(http, two, token, "after api revoke", keys[1]["key"]) == 401

        status, key = await api(http, two, "POST", f"/api/v1/endpoints/{eid}/api-keys", {})
        live = key["key"]
        assert await post(http, one, token, "new key", live) == 202

        await receiver.wait_for(5, timeout=30)
        changed = await cli(
            one,
            "endpoints",
            "update",
            eid,
            "--webhook",
            receiver.url.replace("/hook", "/b"),
            "--password",
            "second",
        )
        assert changed.returncode == 0, changed.stderr
        before = len(receiver.deliveries)
        for node in (one, two):
            assert await post(http, node, token, f"to b via {node.name}", live) == 202
        arrived = await receiver.wait_for(before + 2, timeout=30)
        for delivery in arrived[before:]:
            assert delivery.path == "/b"
            assert delivery.headers["Authorization"] == basic("bot", "second")

        inactive = await cli(one, "endpoints", "update", eid, "--inactive")
        assert inactive.returncode == 0, inactive.stderr
        assert await post(http, two, token, "inactive", live) == 404
        status, _ = await api(http, one, "PATCH", f"/api/v1/endpoints/{eid}", {"active": True})
        assert status == 200
        assert await post(http, two, token, "active again", live) == 202

        await receiver.wait_for(before + 3, timeout=30)
        status, _ = await api(http, one, "DELETE", f"/api/v1/endpoints/{eid}?force=true")
        assert status == 204
        assert await post(http, two, token, "deleted", live) == 404
        async with http.get(f"{two.base}/metrics") as resp:
            assert eid not in await resp.text()

        status, other = await api(
            http,
            two,
            "POST",
            "/api/v1/endpoints",
            {"name": "other", "flow": "echo", "webhookUrl": receiver.url},
        )
        assert status == 201
        assert await post(http, one, other["urlToken"], "warm") == 202
        await receiver.wait_for(before + 4, timeout=30)
        deleted = await cli(two, "endpoints", "delete", other["id"], "--force")
        assert deleted.returncode == 0, deleted.stderr
        assert orjson.loads(deleted.stdout)["deleted"] == other["id"]
        for node in (one, two):
            assert await post(http, node, other["urlToken"], "deleted") == 404
