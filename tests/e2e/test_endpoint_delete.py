"""Deleting an endpoint never silently drops accepted work, through the API or the CLI.

While outputs are pending the delete is refused (409, the counts named); forced, each
pending message and output is failed with the reason recorded. Either way the ingress
answers 404 at once and the metrics stop naming the endpoint. SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.receiver import Receiver
from tests.support.server import RunningServer, running_server

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def server(tmp_path: Path, db_url: str) -> AsyncIterator[RunningServer]:
    """A server whose failed deliveries wait a minute before their retry: they stay
    pending for the whole test."""
    async with running_server(
        tmp_path, db_url, flows_dir=REPO / "flows", delivery_retry_schedule=[60.0, 60.0]
    ) as s:
        yield s


async def cli(
    server: RunningServer, tmp_path: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FLOWHOOK_")},
        "FLOWHOOK_DATA_DIR": str(tmp_path / "data"),
        "FLOWHOOK_DATABASE_URL": server.services.settings.resolved_database_url,
    }
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "flowhook", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def pending_endpoint(server: RunningServer, receiver: Receiver, name: str) -> dict[str, str]:
    """An endpoint whose receiver refuses everything: its outputs stay pending."""
    ep = await server.create_endpoint(name=name, flow="echo", webhookUrl=receiver.url)
    for i in range(3):
        status, _ = await server.post_message(ep, {"userId": "u", "sessionId": "s", "text": f"{i}"})
        assert status == 202
    async with asyncio.timeout(30):
        while (await server.services.store.delivery_counts()).get("pending", 0) < 3:  # noqa: ASYNC110 - polling the database
            await asyncio.sleep(0.05)
    return ep


async def test_api_delete_is_refused_while_work_is_pending_then_forced(
    server: RunningServer, receiver: Receiver
) -> None:
    """409 naming the pending counts; with force=true: 204, every pending output failed
    with the reason, the ingress 404 at once, the endpoint gone from /metrics."""
    receiver.respond = lambda _d: 500
    ep = await pending_endpoint(server, receiver, "busy")
    status, body = await server.api("DELETE", f"/api/v1/endpoints/{ep['id']}")
    assert status == 409
    assert body["error"]["field"] == "force"
    assert body["error"]["pendingOutputs"] == 3
    status, _ = await server.post_message(ep, {"userId": "u", "sessionId": "s", "text": "still"})
    assert status == 202
    status, _ = await server.api("DELETE", f"/api/v1/endpoints/{ep['id']}?force=true")
    assert status == 204
    status, body = await server.post_message(ep, {"userId": "u", "sessionId": "s", "text": "gone"})
    assert status == 404, body
    status, _ = await server.api("GET", f"/api/v1/endpoints/{ep['id']}/deliveries")
    assert status == 404  # the endpoint is gone; its outbox rows are failed, not pending
    counts = await server.services.store.delivery_counts()
    assert counts.get("pending", 0) == 0
    assert counts["failed"] >= 3
    async with server.http.get(server.base_url + "/metrics") as resp:
        assert ep["id"] not in await resp.text()


async def test_cli_delete_is_refused_while_work_is_pending_then_forced(
    server: RunningServer, receiver: Receiver, tmp_path: Path
) -> None:
    """The CLI refuses (exit 1, the counts named) while outputs are pending; --force fails
    each with the reason, and the running server answers 404 on the very next request."""
    receiver.respond = lambda _d: 500
    ep = await pending_endpoint(server, receiver, "busy-cli")
    refused = await cli(server, tmp_path, "endpoints", "delete", ep["id"])
    assert refused.returncode == 1
    assert "3 output(s) not yet delivered" in refused.stderr
    assert "force" in refused.stderr
    status, _ = await server.post_message(ep, {"userId": "u", "sessionId": "s", "text": "still"})
    assert status == 202
    forced = await cli(server, tmp_path, "endpoints", "delete", ep["id"], "--force")
    assert forced.returncode == 0, forced.stderr
    status, _ = await server.post_message(ep, {"userId": "u", "sessionId": "s", "text": "gone"})
    assert status == 404
    counts = await server.services.store.delivery_counts()
    assert counts.get("pending", 0) == 0
    async with server.http.get(server.base_url + "/metrics") as resp:
        assert ep["id"] not in await resp.text()


async def test_forced_delete_fails_accepted_messages_with_the_reason(
    server: RunningServer, receiver: Receiver
) -> None:
    """Messages accepted but not yet run when the endpoint is force-deleted end failed,
    each with its id, trace id and why; none is silently dropped."""
    ep = await server.create_endpoint(name="queued", flow="echo", webhookUrl=receiver.url)
    await server.services.runner.stop()  # nothing runs: the messages stay pending
    traces = []
    for i in range(2):
        status, body = await server.post_message(
            ep, {"userId": "u", "sessionId": "s", "text": f"{i}"}
        )
        assert status == 202
        traces.append(body["traceId"])
    status, body = await server.api("DELETE", f"/api/v1/endpoints/{ep['id']}")
    assert (status, body["error"]["pendingMessages"]) == (409, 2)
    status, _ = await server.api("DELETE", f"/api/v1/endpoints/{ep['id']}?force=true")
    assert status == 204
    for message_id in (1, 2):
        status, message = await server.api("GET", f"/api/v1/messages/{message_id}")
        assert status == 200
        assert message["status"] == "failed"
        assert message["traceId"] in traces
        assert f"message {message_id} (traceId {message['traceId']})" in message["error"]
        assert "deleted" in message["error"]
