"""`flowhook export` / `flowhook import` as real processes: from one data dir into a fresh
one (each backend), then `flowhook serve` there delivers through the imported endpoint."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import free_port, start, wait_for_line
from tests.support.receiver import Receiver

FLOWHOOK = [sys.executable, "-m", "flowhook"]
PASSWORD = "cli-webhook-pw-77"
PASSPHRASE = "a long snapshot passphrase"
GREET = 'name: greet\nstart: hello\nnodes:\n  hello:\n    type: say\n    text: "greet: {{ input.text }}"\n'


def make_env(root: Path, db_url: str | None = None) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("FLOWHOOK_")}
    e.update(
        FLOWHOOK_DATA_DIR=str(root / "data"),
        FLOWHOOK_FLOWS_DIR=str(root / "flows"),
        FLOWHOOK_WEBHOOK_ALLOW_CIDRS="127.0.0.0/8,::1/128",
        SNAP_PASS=PASSPHRASE,
        WRONG_PASS="another passphrase",
        PYTHONUNBUFFERED="1",
    )
    if db_url is not None:
        e["FLOWHOOK_DATABASE_URL"] = db_url
    return e


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FLOWHOOK, *args], env=env, capture_output=True, text=True, timeout=90, check=False
    )


def ok(env: dict[str, str], *args: str) -> Any:
    res = cli(env, *args)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Data dir A with a flow file, a Basic Auth endpoint on it and an API-key endpoint.
    Made once for the module: the tests only export from it."""
    root = tmp_path_factory.mktemp("source")
    env = make_env(root / "a")
    (root / "a" / "flows").mkdir(parents=True)
    (root / "a" / "flows" / "greet.yaml").write_text(GREET)
    basic = ok(
        env, "endpoints", "create", "--name", "basic", "--flow", "greet",
        "--webhook", "http://127.0.0.1:9/hook", "--user", "bot", "--password", PASSWORD,
    )  # fmt: skip
    keyed = ok(
        env, "endpoints", "create", "--name", "keyed", "--flow", "echo",
        "--webhook", "http://127.0.0.1:9/hook", "--auth", "api-key",
    )  # fmt: skip
    key = ok(env, "keys", "create", keyed["id"])
    return {"env": env, "basic": basic, "keyed": keyed, "key": key["key"]}


async def test_cli_export_import_then_serve_delivers_with_the_password(
    tmp_path: Path, db_url: str, source: dict[str, Any], receiver: Receiver
) -> None:
    """`export --include-secrets` writes a 0600 file without the password or API key in
    clear; `import` with a wrong passphrase fails clearly and imports nothing; with the
    right one it creates both endpoints in a fresh data dir, prints that 'keyed' needs a
    new API key, and `flowhook serve` there delivers a message sent with `flowhook send`
    to a real receiver with the original Basic Auth password."""
    out = tmp_path / "snap.json"
    res = cli(
        source["env"],
        "export",
        "--out",
        str(out),
        "--include-secrets",
        "--passphrase-env",
        "SNAP_PASS",
    )
    assert res.returncode == 0, res.stderr
    assert "API keys are never exported" in res.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    text = out.read_text()
    for clear in (PASSWORD, source["key"], source["basic"]["urlToken"], PASSPHRASE):
        assert clear not in text

    env = make_env(tmp_path / "b", db_url)
    wrong = await asyncio.to_thread(cli, env, "import", str(out), "--passphrase-env", "WRONG_PASS")
    assert wrong.returncode == 1
    assert "the passphrase does not open this snapshot's secrets" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    assert ok(env, "endpoints", "list", "--json")["items"] == []

    done = await asyncio.to_thread(cli, env, "import", str(out), "--passphrase-env", "SNAP_PASS")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["needsApiKey"] == ["keyed"]
    assert "needs a new API key" in done.stderr
    assert (tmp_path / "b" / "flows" / "greet.yaml").read_text() == GREET
    basic = next(e for e in result["endpoints"] if e["name"] == "basic")
    ok(env, "endpoints", "update", basic["id"], "--webhook", receiver.url)

    env["FLOWHOOK_PORT"] = str(free_port())
    server = start([*FLOWHOOK, "serve"], env)
    try:
        await asyncio.to_thread(wait_for_line, server, "Create an endpoint", 30)
        shown = ok(env, "endpoints", "show", basic["id"])
        sent = await asyncio.to_thread(
            cli, env, "send", shown["endpointUrl"], "--user-id", "u", "--session-id", "s",
            "--text", "over the CLI",
        )  # fmt: skip
        assert sent.returncode == 0, sent.stdout + sent.stderr
        (delivery,) = await receiver.wait_for(1, timeout=20)
    finally:
        server.stop()
    assert delivery.body["AIOutput"]["text"] == "greet: over the CLI"
    expected = "Basic " + base64.b64encode(f"bot:{PASSWORD}".encode()).decode()
    assert delivery.headers["Authorization"] == expected
    assert PASSWORD not in server.output()


def test_cli_import_of_an_invalid_flow_lists_every_problem_and_imports_nothing(
    tmp_path: Path, source: dict[str, Any]
) -> None:
    """A snapshot whose flows are broken (two files, each with its own problem) makes
    `flowhook import` exit 1 printing every problem; the target data dir gets no endpoint
    and its flows dir no file."""
    out = tmp_path / "snap.json"
    assert cli(source["env"], "export", "--out", str(out)).returncode == 0
    snapshot = json.loads(out.read_text())
    snapshot["flows"][0]["text"] = GREET.replace("start: hello", "start: nowhere")
    snapshot["flows"].append({"file": "two.yaml", "text": "name: two\nnodes: 7\n"})
    out.write_text(json.dumps(snapshot))

    env = make_env(tmp_path / "b")
    res = cli(env, "import", str(out))
    assert res.returncode == 1
    assert "the snapshot was not imported" in res.stderr
    assert "snapshot:greet.yaml" in res.stderr
    assert "nowhere" in res.stderr
    assert "snapshot:two.yaml" in res.stderr
    assert "Traceback" not in res.stderr
    assert ok(env, "endpoints", "list", "--json")["items"] == []
    flows_dir = tmp_path / "b" / "flows"
    assert not flows_dir.exists() or list(flows_dir.iterdir()) == []


def test_cli_without_secrets_reports_lost_password_and_conflicts(
    tmp_path: Path, source: dict[str, Any]
) -> None:
    """Exported without --include-secrets to stdout, the import prints that 'basic' lost
    its webhook password; importing again fails on the existing names (nothing changes),
    `--on-conflict skip` keeps them and `--on-conflict replace` keeps their URL."""
    res = cli(source["env"], "export")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["secrets"] is None
    out = tmp_path / "snap.json"
    out.write_text(res.stdout)

    env = make_env(tmp_path / "b")
    first = cli(env, "import", str(out))
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["lostSecrets"] == {"basic": ["webhookPassword"]}
    assert "lost its webhookPassword" in first.stderr
    before = {e["name"]: e["endpointUrl"] for e in ok(env, "endpoints", "list", "--json")["items"]}

    again = cli(env, "import", str(out))
    assert again.returncode == 1
    assert "endpoint 'basic' already exists" in again.stderr
    assert "endpoint 'keyed' already exists" in again.stderr
    skipped = ok(env, "import", str(out), "--on-conflict", "skip")
    assert {e["action"] for e in skipped["endpoints"]} == {"skipped"}
    replaced = ok(env, "import", str(out), "--on-conflict", "replace")
    assert {e["name"]: e["endpointUrl"] for e in replaced["endpoints"]} == before
