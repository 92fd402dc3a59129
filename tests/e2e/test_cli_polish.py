"""The CLI as a script sees it: --version, connection errors, list output, and the
checkout's flowhook.toml read by the CLI as by the server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from flowhook import __version__
from tests.support.processes import free_port

REPO = Path(__file__).resolve().parents[2]


def flowhook(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("FLOWHOOK_")}
    return subprocess.run(
        [sys.executable, "-m", "flowhook", *args],
        cwd=cwd,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_version(tmp_path: Path) -> None:
    """`flowhook --version` prints the version and exits 0."""
    done = flowhook(tmp_path, "--version")
    assert (done.returncode, done.stdout) == (0, f"flowhook {__version__}\n")


def test_send_to_a_refused_port_is_a_connection_error(tmp_path: Path) -> None:
    """Nothing listening: exit 1 and one line saying the connection was refused, not a
    usage error (exit 2) blaming the URL."""
    url = f"http://127.0.0.1:{free_port()}/endpoint/abc"
    done = flowhook(tmp_path, "send", url, "--user-id", "u", "--session-id", "s", "--text", "x")
    assert done.returncode == 1
    assert done.stderr.strip() == f"error: cannot connect to {url}: Connection refused"


def test_flows_list_follows_the_output_rules(tmp_path: Path) -> None:
    """JSON by default when piped ({items, nextCursor}, like the API), a table on
    request."""
    flows = str(REPO / "flows")
    listed = flowhook(tmp_path, "--flows-dir", flows, "flows", "list")
    assert json.loads(listed.stdout) == {"items": ["echo", "order-help"], "nextCursor": None}
    table = flowhook(tmp_path, "--flows-dir", flows, "flows", "list", "--table")
    assert table.stdout.split() == ["name", "echo", "order-help"]


def test_the_cli_reads_the_projects_flowhook_toml(tmp_path: Path) -> None:
    """With the port and the loopback allowance in ./flowhook.toml, `endpoints create`
    accepts a 127.0.0.1 webhook and prints endpointUrl with the server's port, as the
    server run from the same folder would; the environment still overrides the file."""
    (tmp_path / "flowhook.toml").write_text(
        'port = 18080\nwebhook_allow_cidrs = ["127.0.0.0/8", "::1/128"]\n'
    )
    args = ["--flows-dir", str(REPO / "flows"), "endpoints", "create", "--name", "a"]
    args += ["--flow", "echo", "--webhook", "http://127.0.0.1:8000/hook"]
    done = flowhook(tmp_path, *args)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["endpointUrl"].startswith("http://127.0.0.1:18080/")
    listed = flowhook(tmp_path, "endpoints", "list", "--json", FLOWHOOK_PORT="18081")
    assert listed.returncode == 0, listed.stderr
    (item,) = json.loads(listed.stdout)["items"]
    assert item["endpointUrl"].startswith("http://127.0.0.1:18081/")
    refused = flowhook(tmp_path, *args[:-1], "http://127.0.0.1:8000/x", FLOWHOOK_CONFIG="")
    assert refused.returncode == 1
    assert "FLOWHOOK_WEBHOOK_ALLOW_CIDRS" in refused.stderr
