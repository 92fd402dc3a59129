"""Metrics can be served on an address of their own (and behind the admin token)."""

from __future__ import annotations

from pathlib import Path

from tests.support.processes import free_port
from tests.support.server import ADMIN_TOKEN, running_server


async def test_metrics_on_a_separate_address(tmp_path: Path, db_url: str) -> None:
    """With metrics_port, /metrics is served there and the main port answers 404 for it;
    with metrics_require_token too, that listener wants the admin token."""
    port = free_port()
    async with running_server(
        tmp_path, db_url, metrics_port=port, metrics_require_token=True
    ) as srv:
        async with srv.http.get(f"{srv.base_url}/metrics") as resp:
            assert resp.status == 404
        url = f"http://127.0.0.1:{port}/metrics"
        async with srv.http.get(url) as resp:
            assert resp.status == 401
            assert "admin token" in (await resp.json())["error"]["message"]
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with srv.http.get(url, headers=headers) as resp:
            assert resp.status == 200
            assert "flowhook_" in await resp.text()
