"""The real flowhook server on a real loopback socket, inside the test's event loop."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import uvicorn

from flowhook.config import Settings
from flowhook.http.app import create_app
from flowhook.http.connections import uvicorn_limits
from flowhook.http.fast_ingress import ingress_handler_of
from flowhook.services import Services, build_services

ADMIN_TOKEN = "test-admin-token"


@dataclass
class RunningServer:
    base_url: str
    services: Services
    http: aiohttp.ClientSession

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    async def api(self, method: str, path: str, json: Any = None) -> tuple[int, Any]:
        async with self.http.request(
            method, self.base_url + path, json=json, headers=self.admin
        ) as resp:
            body = await resp.json() if resp.content_type == "application/json" else None
            return resp.status, body

    async def create_endpoint(self, **fields: Any) -> dict[str, Any]:
        status, body = await self.api("POST", "/api/v1/endpoints", fields)
        assert status == 201, body
        assert isinstance(body, dict)
        return body

    async def post_message(
        self,
        endpoint: dict[str, Any],
        body: Any,
        *,
        key: str | None = None,
        raw: bytes | None = None,
    ) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers["X-Webhook-Key"] = key
        kwargs: dict[str, Any] = {"data": raw} if raw is not None else {"json": body}
        async with self.http.post(endpoint["endpointUrl"], headers=headers, **kwargs) as resp:
            return resp.status, await resp.json(content_type=None)


def free_socket() -> socket.socket:
    # proto must be IPPROTO_TCP: asyncio only sets TCP_NODELAY on sockets that say so,
    # and without it every response waits ~40 ms on Nagle + delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@asynccontextmanager
async def running_server(
    tmp_path: Path,
    db_url: str,
    flows_dir: Path | None = None,
    *,
    asgi_only: bool = False,
    **settings: Any,
) -> AsyncIterator[RunningServer]:
    """``asgi_only``: uvicorn's own protocol, every request through ASGI (to compare the
    protocol's direct answers with)."""
    sock = free_socket()
    port = sock.getsockname()[1]
    cfg = Settings(
        data_dir=tmp_path / "data",
        flows_dir=flows_dir or (tmp_path / "flows"),
        database_url=db_url,
        host="127.0.0.1",
        port=port,
        admin_token=ADMIN_TOKEN,
        delivery_retry_schedule=settings.pop("delivery_retry_schedule", [0.05, 0.1, 0.2]),
        # Tests deliver to receivers on loopback, which the SSRF guard blocks by default.
        webhook_allow_cidrs=settings.pop("webhook_allow_cidrs", ["127.0.0.0/8", "::1/128"]),
        # The same for the other outbound features, whose fake services are on loopback.
        **{
            name: settings.pop(name, ["127.0.0.0/8", "::1/128"])
            for name in (
                "http_node_allow_cidrs",
                "llm_allow_cidrs",
                "translation_allow_cidrs",
                "nlu_allow_cidrs",
            )
        },
        **settings,
    )
    try:
        services = build_services(cfg)
    except BaseException:
        sock.close()
        raise
    app = create_app(services)
    # The protocol `flowhook serve` runs: limits, and the ingress route answered directly.
    protocol = {} if asgi_only else uvicorn_limits(cfg, ingress_handler_of(app))
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", **protocol)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        async with aiohttp.ClientSession() as http:
            yield RunningServer(f"http://127.0.0.1:{port}", services, http)
    finally:
        server.should_exit = True
        await task
        sock.close()
