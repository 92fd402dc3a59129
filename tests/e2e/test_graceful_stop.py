"""A server stopped while a webhook POST is in flight lets that POST end and records its
outcome before it exits: the next server does not send it again. A POST that outlasts the
grace period is cut and stays pending (delivered after the restart, same webhook-id).
Real sockets, a real receiver, both backends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from tests.support.server import running_server

REPO = Path(__file__).resolve().parents[2]


class SlowReceiver:
    """Answers 200 after ``delay`` seconds; records the webhook-id of each POST it got."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.ids: list[str] = []
        self.started = asyncio.Event()
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application(client_max_size=1 << 20)
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/hook"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.ids.append(request.headers["webhook-id"])
        self.started.set()
        await asyncio.sleep(self.delay)
        return web.Response(status=200)


@pytest.fixture
async def slow() -> AsyncIterator[SlowReceiver]:
    receiver = SlowReceiver(delay=1.0)
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.stop()


async def stop_during_a_post_then_restart(
    tmp_path: Path, db_url: str, slow: SlowReceiver
) -> dict[str, int]:
    """Post one message, stop the server once its output's POST reached the receiver,
    start another on the same database and let it settle: the outbox's outcome counts."""
    async with running_server(tmp_path, db_url, REPO / "flows") as server:
        ep = await server.create_endpoint(name="slow", flow="echo", webhookUrl=slow.url)
        status, _ = await server.post_message(ep, {"userId": "u", "sessionId": "s", "text": "hi"})
        assert status == 202
        await asyncio.wait_for(slow.started.wait(), 10)
    async with running_server(tmp_path, db_url, REPO / "flows") as server:
        await server.services.run_until_idle(10)
        return await server.services.store.delivery_counts()


async def test_a_post_in_flight_at_stop_is_finished_and_not_sent_again(
    tmp_path: Path, db_url: str, slow: SlowReceiver
) -> None:
    """The receiver takes a second to answer; the server is stopped while it waits.
    The stop waits for the answer and records it: after a restart the output is
    delivered, and the receiver got its webhook-id once."""
    counts = await stop_during_a_post_then_restart(tmp_path, db_url, slow)
    assert counts == {"delivered": 1}
    assert len(slow.ids) == 1, slow.ids


async def test_a_post_outlasting_the_grace_is_cut_and_sent_after_the_restart(
    tmp_path: Path, slow: SlowReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a grace shorter than the receiver's answer the stop does not wait for it: the
    output stays pending and the next server sends it again, with the same webhook-id.
    SQLite: on PostgreSQL the process first hands its partitions back, which lets the
    POSTs in flight end on a timeout of its own (docs/deployment.md)."""
    db_url = f"sqlite:///{tmp_path / 'flowhook.db'}"
    from flowhook.delivery import dispatcher

    # The grace is the default of ``Dispatcher.stop``, bound when it was defined.
    monkeypatch.setattr(dispatcher.Dispatcher.stop, "__defaults__", (0.05,))
    slow.delay = 3.0  # well past the grace, and past the rest of the stop
    counts = await stop_during_a_post_then_restart(tmp_path, db_url, slow)
    assert counts == {"delivered": 1}
    assert len(slow.ids) == 2, slow.ids
    assert slow.ids[0] == slow.ids[1]
