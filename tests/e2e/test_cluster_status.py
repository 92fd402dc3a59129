"""What a process says about the processes sharing its database, and the roles it refuses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import REPO
from tests.support.server import running_server


def flowhook(
    tmp_path: Path, db_url: str, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FLOWHOOK_")}
    environ.update(FLOWHOOK_FLOWS_DIR=str(REPO / "flows"), **env)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "flowhook",
            "--data-dir",
            str(tmp_path / "data"),
            "--database-url",
            db_url,
            *args,
        ],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_cluster_view_lists_this_process_and_its_partitions(
    tmp_path: Path, db_url: str
) -> None:
    """GET /api/v1/cluster (admin token) and `flowhook cluster status` agree: on
    PostgreSQL the one running process holds all 256 partitions under its role; on
    SQLite there is nothing to share and no process is listed."""
    async with running_server(tmp_path, db_url) as srv:
        code, view = await srv.api("GET", "/api/v1/cluster")
        assert code == 200, view
        cli = flowhook(tmp_path, db_url, "cluster", "status")
        assert cli.returncode == 0, cli.stderr
        from_cli = json.loads(cli.stdout)
        async with srv.http.get(srv.base_url + "/api/v1/cluster") as resp:
            assert resp.status == 401  # the admin token is required
    assert view["partitions"] == 256
    if db_url.startswith("sqlite"):
        assert view == {
            "backend": "sqlite",
            "partitions": 256,
            "unownedPartitions": 0,
            "workers": [],
        }
        assert from_cli == view
        return
    assert view["backend"] == "postgresql"
    assert view["unownedPartitions"] == 0
    (worker,) = view["workers"]
    assert (worker["role"], worker["partitions"], worker["pid"]) == ("both", 256, os.getpid())
    assert from_cli["workers"][0]["id"] == worker["id"]


def test_roles_other_than_both_need_postgresql(tmp_path: Path) -> None:
    """With SQLite one process does everything: `serve --role worker` (or ingress) exits
    1 with one line saying PostgreSQL is needed, and no traceback. An unknown role is a
    usage error (exit 2) naming the setting and the choices."""
    db = f"sqlite:///{tmp_path / 'f.db'}"
    for role in ("worker", "ingress"):
        res = flowhook(tmp_path, db, "serve", "--role", role)
        assert res.returncode == 1
        assert "needs PostgreSQL" in res.stderr
        assert "Traceback" not in res.stderr
    res = flowhook(tmp_path, db, "serve", "--role", "bogus")
    assert res.returncode == 2
    assert "setting role (FLOWHOOK_ROLE): Input should be 'both', 'ingress' or 'worker'" in (
        res.stderr
    )
    assert "Traceback" not in res.stderr
