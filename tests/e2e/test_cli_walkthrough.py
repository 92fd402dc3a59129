"""The README walkthrough with the real commands: serve, listen, endpoints, keys, send."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import Proc, free_port, start, wait_for_line

REPO = Path(__file__).resolve().parents[2]
FLOWHOOK = [sys.executable, "-m", "flowhook"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("FLOWHOOK_")}
    e.update(
        FLOWHOOK_DATA_DIR=str(tmp_path / "data"),
        FLOWHOOK_FLOWS_DIR=str(REPO / "flows"),
        FLOWHOOK_WEBHOOK_ALLOW_CIDRS="127.0.0.0/8,::1/128",
        PYTHONUNBUFFERED="1",
    )
    return e


def cli(env: dict[str, str], *args: str, ok: bool = True) -> Any:
    res = subprocess.run(
        [*FLOWHOOK, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    if ok:
        assert res.returncode == 0, res.stderr
        return json.loads(res.stdout)
    return res


@pytest.fixture
def services(env: dict[str, str]) -> Iterator[tuple[Proc, Proc, int]]:
    listen_port, serve_port = free_port(), free_port()
    env["FLOWHOOK_PORT"] = str(serve_port)
    listener = start(
        [*FLOWHOOK, "listen", "--port", str(listen_port), "--user", "bot", "--password", "pw"], env
    )
    server = start([*FLOWHOOK, "serve"], env)
    try:
        wait_for_line(server, "Create an endpoint", timeout=30)
        wait_for_line(listener, "listening", timeout=30)
        yield listener, server, listen_port
    finally:
        server.stop()
        listener.stop()


def test_walkthrough_from_the_readme(
    services: tuple[Proc, Proc, int], env: dict[str, str], tmp_path: Path
) -> None:
    """A new user's path works: the token is private (stderr is a pipe here, so the banner
    names its file instead of printing it whole), an endpoint is created with
    the CLI, `flowhook send` gets a 202 and `flowhook listen` prints the bot's reply."""
    listener, server, listen_port = services
    token_file = tmp_path / "data" / "admin-token"
    token = token_file.read_text().strip()
    assert token not in server.output()  # a pipe, as to a log collector
    assert f"{token[:8]}…" in server.output()
    assert str(token_file) in server.output()
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600

    ep = cli(
        env,
        "endpoints",
        "create",
        "--name",
        "demo",
        "--flow",
        "echo",
        "--webhook",
        f"http://127.0.0.1:{listen_port}/hook",
        "--user",
        "bot",
        "--password",
        "pw",
    )
    assert ep["endpointUrl"].endswith("/endpoint/" + ep["urlToken"])
    assert "pw" not in json.dumps({k: v for k, v in ep.items() if k != "urlToken"}).replace(
        "webhookUrl", ""
    )
    sent = cli(
        env,
        "send",
        ep["endpointUrl"],
        "--user-id",
        "user123",
        "--session-id",
        "session123",
        "--text",
        "Hello, I need help with my order",
        "--data",
        '{"exampleKey": "exampleValue"}',
    )
    assert sent["traceId"].startswith("endpoint-httpIncomingMessage-")
    wait_for_line(listener, "You said: Hello, I need help with my order", timeout=20)
    assert sent["traceId"] in listener.output()

    listed = cli(env, "endpoints", "list", "--json")
    assert [e["name"] for e in listed["items"]] == ["demo"]
    assert cli(env, "endpoints", "show", ep["id"])["id"] == ep["id"]


def test_api_keys_from_the_cli(services: tuple[Proc, Proc, int], env: dict[str, str]) -> None:
    """Switching an endpoint to API keys with the CLI takes effect on the running server:
    a message without a key is refused, one with a created key is accepted, a revoked key is refused."""
    _listener, _server, listen_port = services
    ep = cli(
        env,
        "endpoints",
        "create",
        "--name",
        "keyed",
        "--flow",
        "echo",
        "--webhook",
        f"http://127.0.0.1:{listen_port}/hook",
        "--auth",
        "api-key",
    )
    key = cli(env, "keys", "create", ep["id"], "--name", "crm")
    assert key["key"].startswith("fhk_")
    listed = cli(env, "keys", "list", ep["id"], "--json")
    assert [(k["id"], k["name"]) for k in listed["items"]] == [(key["id"], "crm")]
    assert key["key"] not in json.dumps(listed)

    send = ["send", ep["endpointUrl"], "--user-id", "u", "--session-id", "s", "--text", "hi"]
    refused = cli(env, *send, ok=False)
    assert refused.returncode == 1
    assert json.loads(refused.stdout)["error"]["code"] == "unauthorized"
    assert "traceId" in cli(env, *send, "--key", key["key"])

    cli(env, "keys", "revoke", ep["id"], key["id"])
    deadline = time.monotonic() + 5  # another process's change is seen within the cache TTL
    while True:
        res = cli(env, *send, "--key", key["key"], ok=False)
        if res.returncode == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert json.loads(res.stdout)["error"]["code"] == "unauthorized"


def test_cli_errors_are_clear(env: dict[str, str]) -> None:
    """Bad CLI input exits non-zero with a message naming the problem, and no traceback."""
    res = cli(
        env,
        "endpoints",
        "create",
        "--name",
        "x",
        "--flow",
        "nope",
        "--webhook",
        "http://127.0.0.1:9/h",
        ok=False,
    )
    assert res.returncode == 1
    assert "flow 'nope' does not exist" in res.stderr
    res = cli(
        env,
        "endpoints",
        "create",
        "--name",
        "x",
        "--flow",
        "echo",
        "--webhook",
        "ftp://h",
        ok=False,
    )
    assert res.returncode == 2
    assert "webhook_url" in res.stderr or "webhookUrl" in res.stderr
    res = cli(env, "endpoints", "show", "missing", ok=False)
    assert (res.returncode, "Traceback" in res.stderr) == (1, False)
    assert "no endpoint with id 'missing'" in res.stderr


def test_serve_refuses_invalid_flows_listing_every_problem(
    env: dict[str, str], tmp_path: Path
) -> None:
    """`flowhook serve` with a broken flow file exits 1 and lists every problem as
    file:line: message, with no traceback."""
    flows = tmp_path / "broken"
    flows.mkdir()
    (flows / "bad.yaml").write_text(
        'nodes:\n  a: {type: say, text: "{{ oops", next: nowhere}\n  b: {type: sya}\n'
    )
    env["FLOWHOOK_FLOWS_DIR"] = str(flows)
    env["FLOWHOOK_PORT"] = str(free_port())
    res = subprocess.run(
        [*FLOWHOOK, "serve"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    lines = [line for line in res.stderr.splitlines() if "bad.yaml:" in line]
    assert [line.split(": ")[0].rsplit("/", 1)[-1] for line in lines] == [
        "bad.yaml:2",
        "bad.yaml:2",
        "bad.yaml:3",
        "bad.yaml:3",
    ]
    assert "unknown node type 'sya'" in res.stderr
    assert "node 'b' is unreachable" in res.stderr
