"""`flowhook serve` refuses to start where it would break its guarantees, clearly:
a second server on one SQLite database, a busy port (the banner only after the bind),
a master key that is not the database's. And `flowhook secret-key rotate` re-encrypts
every stored secret. Real processes."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from sqlalchemy import create_engine, select

from flowhook.endpoints.key_check import WRONG_KEY
from flowhook.endpoints.security import PASSWORD
from flowhook.endpoints.vault import SecretBox, decode_key
from flowhook.storage import schema
from tests.support import postgres
from tests.support.cluster import launch_node, secret_key, stop_all, wait_ready
from tests.support.processes import free_port, start, wait_for_line

REPO = Path(__file__).resolve().parents[2]
ADMIN = "startup-admin-token"


def env_for(data_dir: Path, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWHOOK_")}
    env.update(
        FLOWHOOK_DATA_DIR=str(data_dir),
        FLOWHOOK_FLOWS_DIR=str(REPO / "flows"),
        FLOWHOOK_PORT=str(port),
        FLOWHOOK_ADMIN_TOKEN=ADMIN,
        FLOWHOOK_LOG_LEVEL="warning",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flowhook", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_second_server_on_one_sqlite_database_exits_naming_the_first(
    tmp_path: Path,
) -> None:
    """The second `serve` on the same data dir exits 1 with a message naming the running
    one (its pid); after the first is killed (-9), the lock is free again."""
    data = tmp_path / "data"
    first = start([sys.executable, "-m", "flowhook", "serve"], env_for(data, free_port()))
    try:
        await asyncio.to_thread(wait_for_line, first, "flowhook is running", 60)
        second = await asyncio.to_thread(run, ["serve"], env_for(data, free_port()))
        assert second.returncode == 1
        assert f"pid {first.popen.pid}" in second.stderr
        assert "only one may run" in second.stderr
        assert "flowhook is running" not in second.stderr
    finally:
        first.stop(9)
    third = start([sys.executable, "-m", "flowhook", "serve"], env_for(data, free_port()))
    try:
        await asyncio.to_thread(wait_for_line, third, "flowhook is running", 60)
    finally:
        third.stop()


async def test_busy_port_gives_one_line_and_no_banner(tmp_path: Path) -> None:
    """A port in use: exit 1, one line naming the address, and no "is running" banner."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = await asyncio.to_thread(run, ["serve"], env_for(tmp_path / "data", port))
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in lines[0]
    assert "flowhook is running" not in result.stderr


@pytest.fixture
def scratch_pg() -> Iterator[str]:
    url, name = postgres.create_scratch_database()
    yield url
    postgres.drop_database(name)


@pytest.mark.postgres
async def test_a_process_with_another_master_key_refuses_to_start(
    tmp_path: Path, scratch_pg: str
) -> None:
    """Two processes on one PostgreSQL database: the one whose key cannot read the stored
    secrets exits 1 with a clear error instead of failing deliveries."""
    node = launch_node(
        tmp_path,
        "first",
        flows_dir=REPO / "flows",
        db_url=scratch_pg,
        admin_token=ADMIN,
        key=secret_key(),
    )
    try:
        await wait_ready(node, 60)
        created = await asyncio.to_thread(
            run,
            [
                "endpoints",
                "create",
                "--name",
                "e",
                "--flow",
                "echo",
                "--webhook",
                "https://example.com/hook",
                "--user",
                "bot",
                "--password",
                "pw",
            ],
            node.env,
        )
        assert created.returncode == 0, created.stderr
        # No FLOWHOOK_SECRET_KEY: this process would generate a key file of its own.
        env = env_for(tmp_path / "other", free_port(), FLOWHOOK_DATABASE_URL=scratch_pg)
        other = await asyncio.to_thread(run, ["serve"], env)
        assert other.returncode == 1
        assert WRONG_KEY in other.stderr.replace("\n", " ")
        assert "flowhook is running" not in other.stderr
        refused = await asyncio.to_thread(run, ["endpoints", "list", "--json"], env)
        assert refused.returncode == 1
    finally:
        await asyncio.to_thread(stop_all, [node])


def test_rotation_reencrypts_every_secret_and_replaces_the_key_file(tmp_path: Path) -> None:
    """With the key in the data dir's key file, `secret-key rotate` re-encrypts every
    stored secret under a new key and replaces the file; the CLI and a server with the new
    key read them, the old key is refused."""
    data = tmp_path / "data"
    env = env_for(data, free_port())
    for name in ("a", "b"):
        created = run(
            [
                "endpoints",
                "create",
                "--name",
                name,
                "--flow",
                "echo",
                "--webhook",
                "https://example.com/hook",
                "--user",
                "bot",
                "--password",
                f"pw-{name}",
            ],
            env,
        )
        assert created.returncode == 0, created.stderr
    old_key = (data / "secret-key").read_text().strip()
    rotated = run(["secret-key", "rotate"], env)
    assert rotated.returncode == 0, rotated.stderr
    answer = orjson.loads(rotated.stdout)
    assert answer["reencrypted"] == 2
    assert "newKey" not in answer  # the key lives in the file, never printed
    new_key = (data / "secret-key").read_text().strip()
    assert new_key != old_key
    assert old_key not in rotated.stdout + rotated.stderr
    assert run(["endpoints", "list", "--json"], env).returncode == 0
    box = SecretBox(decode_key(new_key))
    engine = create_engine(f"sqlite:///{data / 'flowhook.db'}")
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                schema.endpoints.c.id, schema.endpoints.c.name, schema.endpoints.c.webhook_password
            )
        ).all()
    engine.dispose()
    assert {box.open(r.webhook_password, f"{r.id}:{PASSWORD}") for r in rows} == {"pw-a", "pw-b"}
    with_old = run(["endpoints", "list", "--json"], {**env, "FLOWHOOK_SECRET_KEY": old_key})
    assert with_old.returncode == 1
    assert "cannot read this database's stored secrets" in with_old.stderr
    exported = run(["export", "--out", str(tmp_path / "snap.json")], env)
    assert exported.returncode == 0, exported.stderr
