"""An endpoint whose receiver fails every attempt costs the server little while it waits:
it stays *failing* while its outputs wait in the outbox for their retries (so it keeps its
small share of connections), and the outbox is read for it about once a second, sweeps
included, not after every attempt and at every sweep. Real server, real receiver, both
backends."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from flowhook.delivery.control import FAILING_READ_SPACING
from flowhook.delivery.window import FAILING_AFTER
from tests.e2e.conftest import REPO
from tests.e2e.test_delivery_guarantees import post_in_order
from tests.support.server import running_server
from tests.support.webhooks import WebhookReceiver, status

WATCH_SECONDS = 3.0


def counting(read: Callable[..., Awaitable[Any]], endpoint_id: str, reads: list[float]) -> Any:
    """``read`` (an outbox read taking the endpoint id first), noting each call for
    ``endpoint_id``."""

    async def counted(*args: Any, **kwargs: Any) -> Any:
        if args and args[0] == endpoint_id:
            reads.append(asyncio.get_running_loop().time())
        return await read(*args, **kwargs)

    return counted


async def test_a_failing_endpoint_stays_failing_and_is_read_about_once_a_second(
    tmp_path: Path, db_url: str
) -> None:
    """With 20 sessions of a receiver answering 500 and retries 1.5 s apart (each let go to
    the outbox, the sweep every 0.2 s), the endpoint counts as failing at every sample
    once it failed ``FAILING_AFTER`` times, though memory often holds nothing of it, and
    the outbox is read for it at most once per ``FAILING_READ_SPACING`` (plus one)."""
    hook = WebhookReceiver(answer=status(500))
    await hook.start()
    try:
        async with running_server(
            tmp_path,
            db_url,
            REPO / "flows",
            delivery_retry_schedule=[1.5] * 50,
            delivery_sweep_seconds=0.2,
        ) as server:
            dispatcher = server.services.dispatcher
            control = server.services.delivery_control
            bad = await server.create_endpoint(name="bad", flow="echo", webhookUrl=hook.url)
            await post_in_order(server, bad, sessions=20, per_session=2)
            await hook.wait_until(lambda: len(hook.hits) >= 2 * FAILING_AFTER)
            for _ in range(200):
                if dispatcher.endpoint_failing(bad["id"]):
                    break
                await asyncio.sleep(0.01)
            reads: list[float] = []
            deliveries = control._deliveries
            deliveries.due = counting(deliveries.due, bad["id"], reads)  # type: ignore[method-assign]
            loop = asyncio.get_running_loop()
            end = loop.time() + WATCH_SECONDS
            failing: list[bool] = []
            unheld = 0
            while loop.time() < end:
                failing.append(dispatcher.endpoint_failing(bad["id"]))
                unheld += dispatcher.held_of(bad["id"]) == 0
                await asyncio.sleep(0.01)
            hits = len(hook.hits)
            assert all(failing)
            assert unheld > 0  # memory let go of all of it at times, and it stayed failing
            assert len(reads) <= WATCH_SECONDS / FAILING_READ_SPACING + 1, reads
            assert hits > 2 * FAILING_AFTER  # it was still being tried meanwhile
    finally:
        await hook.stop()
