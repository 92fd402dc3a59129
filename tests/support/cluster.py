"""Several `flowhook serve` processes sharing one database, as real processes on loopback."""

from __future__ import annotations

import asyncio
import base64
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from tests.support.processes import Proc, free_port, start


@dataclass
class Node:
    """One `flowhook serve` process of a cluster."""

    name: str
    port: int
    env: dict[str, str]
    proc: Proc

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.popen.pid

    def running(self) -> bool:
        return self.proc.popen.poll() is None

    def tail(self, chars: int = 1500) -> str:
        return f"--- {self.name} (exit={self.proc.popen.poll()}) ---\n{self.proc.output()[-chars:]}"


def secret_key() -> str:
    """A FLOWHOOK_SECRET_KEY: base64 of 32 random bytes."""
    return base64.b64encode(os.urandom(32)).decode()


def node_env(
    *,
    data_dir: Path,
    flows_dir: Path,
    db_url: str,
    port: int,
    admin_token: str,
    key: str,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The environment of one cluster process (no FLOWHOOK_* inherited from the test run)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWHOOK_")}
    env.update(
        FLOWHOOK_DATA_DIR=str(data_dir),
        FLOWHOOK_FLOWS_DIR=str(flows_dir),
        FLOWHOOK_DATABASE_URL=db_url,
        FLOWHOOK_PORT=str(port),
        FLOWHOOK_ADMIN_TOKEN=admin_token,
        FLOWHOOK_SECRET_KEY=key,
        FLOWHOOK_WEBHOOK_ALLOW_CIDRS="127.0.0.0/8,::1/128",
        FLOWHOOK_DELIVERY_RETRY_SCHEDULE="[0.05,0.1,0.2,0.5,1,1,1,1]",
        FLOWHOOK_LOG_LEVEL="warning",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra or {})
    return env


async def wait_ready(node: Node, timeout: float) -> None:
    """Wait (bounded) until the node answers /readyz with 200; fail early if it exits."""
    deadline = time.monotonic() + timeout
    client_timeout = aiohttp.ClientTimeout(total=2)
    async with aiohttp.ClientSession(timeout=client_timeout) as http:
        while time.monotonic() < deadline:
            if not node.running():
                break
            try:
                async with http.get(f"{node.base}/readyz") as resp:
                    if resp.status == 200:
                        return
            except (TimeoutError, aiohttp.ClientError):
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{node.name} not ready within {timeout}s\n{node.tail(3000)}")


async def start_cluster(
    tmp_path: Path,
    *,
    count: int,
    flows_dir: Path,
    db_url: str,
    admin_token: str,
    extra: dict[str, str] | None = None,
    ready_timeout: float = 45,
) -> list[Node]:
    """Start ``count`` `flowhook serve` processes at once (same database, admin token and
    secret key; each its own port and data dir) and wait until each is ready. On failure
    the processes already started are stopped."""
    key = secret_key()
    nodes: list[Node] = []
    try:
        for i in range(1, count + 1):
            port = free_port()
            env = node_env(
                data_dir=tmp_path / f"node{i}",
                flows_dir=flows_dir,
                db_url=db_url,
                port=port,
                admin_token=admin_token,
                key=key,
                extra=extra,
            )
            proc = start([sys.executable, "-m", "flowhook", "serve"], env)
            nodes.append(Node(f"node{i}", port, env, proc))
        await asyncio.gather(*(wait_ready(n, ready_timeout) for n in nodes))
    except BaseException:
        await asyncio.to_thread(stop_all, nodes)
        raise
    return nodes


def stop_all(nodes: list[Node]) -> None:
    """SIGTERM each node still running (SIGKILL after a bounded wait); close its pipes."""
    for node in nodes:
        node.proc.stop()


def launch_node(
    tmp_path: Path,
    name: str,
    *,
    flows_dir: Path,
    db_url: str,
    admin_token: str,
    key: str,
    extra: dict[str, str] | None = None,
) -> Node:
    """Start one `flowhook serve` process (its own port and data dir ``tmp_path/name``)
    without waiting for it: pair with :func:`wait_ready`. Nodes launched with the same
    ``key`` and ``admin_token`` form one cluster with those of :func:`start_cluster`'s
    kind; ``extra`` sets this process's own FLOWHOOK_* (its role, say)."""
    port = free_port()
    env = node_env(
        data_dir=tmp_path / name,
        flows_dir=flows_dir,
        db_url=db_url,
        port=port,
        admin_token=admin_token,
        key=key,
        extra=extra,
    )
    proc = start([sys.executable, "-m", "flowhook", "serve"], env)
    return Node(name, port, env, proc)
