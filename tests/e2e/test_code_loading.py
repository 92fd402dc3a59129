"""Only files in the flows dir load as code: the admin API refuses transformer names
from sys.path or outside the flows dir, a snapshot import cannot bring in code nodes
naming modules, and code that runs cannot stall other endpoints."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.receiver import Receiver
from tests.support.server import RunningServer, running_server

HELPERS = """
import time

def nap(input, context, profile):
    time.sleep(3)
    return {"outputs": ["rested"]}

def same(doc):
    return doc
"""
SLEEPY = """
name: sleepy
nodes:
  nap: {type: code, function: "helpers.py:nap"}
"""


@pytest.fixture
async def srv(tmp_path: Path, db_url: str) -> AsyncIterator[RunningServer]:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "helpers.py").write_text(HELPERS)
    (flows / "sleepy.yaml").write_text(SLEEPY)
    (tmp_path / "outside.py").write_text("def same(doc):\n    return doc\n")
    async with running_server(tmp_path, db_url, flows_dir=flows, code_timeout_seconds=1) as s:
        yield s


REFUSED = ["os:system", "builtins:eval", "subprocess:getoutput", "../outside.py:same", "/x.py:f"]


async def test_transformers_must_be_flows_dir_files(srv: RunningServer, receiver: Receiver) -> None:
    """Creating or updating an endpoint with a transformer named from sys.path or outside
    the flows dir is a 400 naming the field; a file of the flows dir is accepted."""
    ep = await srv.create_endpoint(name="ok", flow="echo", webhookUrl=receiver.url)
    for field in ("inputTransformer", "outputTransformer"):
        for name in REFUSED:
            status, body = await srv.api(
                "POST",
                "/api/v1/endpoints",
                {"name": "t", "flow": "echo", "webhookUrl": receiver.url, field: name},
            )
            assert (status, body["error"]["field"]) == (400, field), (name, body)
            status, body = await srv.api("PATCH", f"/api/v1/endpoints/{ep['id']}", {field: name})
            assert (status, body["error"]["field"]) == (400, field), (name, body)
        fine = {field: "helpers.py:same"}
        assert await srv.create_endpoint(name=field, flow="echo", webhookUrl=receiver.url, **fine)


async def test_input_transformer_os_system_never_runs(
    srv: RunningServer, receiver: Receiver, tmp_path: Path
) -> None:
    """The attack path: ``inputTransformer: "os:system"`` then a POST whose body is a
    JSON string holding a shell command. The endpoint is refused, so no command runs."""
    marker = tmp_path / "pwned"
    status, ep = await srv.api(
        "POST",
        "/api/v1/endpoints",
        {"name": "x", "flow": "echo", "webhookUrl": receiver.url, "inputTransformer": "os:system"},
    )
    if status == 201:  # what happened before: the command reached os.system
        await srv.post_message(ep, f"touch {marker}")
    assert not marker.exists()
    assert status == 400


async def test_snapshot_import_cannot_add_module_code(srv: RunningServer) -> None:
    """A snapshot whose flow has a code node naming ``os:system`` is refused (400 naming
    the setting) and writes nothing."""
    _, exported = await srv.api("GET", "/api/v1/snapshot")
    exported["flows"].append(
        {
            "file": "evil.yaml",
            "text": "name: evil\nnodes:\n  run: {type: code, function: 'os:system'}\n",
        }
    )
    headers = {**srv.admin, "Content-Type": "application/json"}
    async with srv.http.post(
        f"{srv.base_url}/api/v1/snapshot", data=json.dumps(exported), headers=headers
    ) as resp:
        body = await resp.json()
        assert resp.status == 400, body
    assert "code_allow_modules" in "\n".join(p["message"] for p in body["error"]["problems"])
    assert not (srv.services.settings.flows_dir / "evil.yaml").exists()


async def test_slow_code_node_does_not_delay_other_endpoints(
    srv: RunningServer, receiver: Receiver
) -> None:
    """A code node sleeping 3 s (timeout 1 s) neither delays another endpoint's ingress
    and delivery nor outlives its timeout: its turn fails with the error output."""
    sleepy = await srv.create_endpoint(name="sleepy", flow="sleepy", webhookUrl=receiver.url)
    echo = await srv.create_endpoint(name="echo", flow="echo", webhookUrl=receiver.url)
    await srv.post_message(sleepy, {"userId": "u", "sessionId": "s", "text": "zz"})
    await asyncio.sleep(0.1)  # the code is running now
    started = time.monotonic()
    status, _ = await srv.post_message(echo, {"userId": "u", "sessionId": "s", "text": "hi"})
    assert status == 202
    (first,) = await receiver.wait_for(1, timeout=5)
    assert time.monotonic() - started < 0.8
    assert first.body["AIOutput"]["text"] == "You said: hi"
    second = (await receiver.wait_for(2, timeout=5))[1]
    assert second.body["AIOutput"]["text"] == "Sorry, something went wrong."
