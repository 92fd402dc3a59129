"""Deliveries in the console: failed ones with every attempt, replay, and switching an
endpoint's delivery back on after its webhook answered 410 Gone."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.browser.conftest import BROWSER_LOOP
from tests.browser.console import open_console
from tests.support.receiver import Receiver
from tests.support.server import RunningServer

pytestmark = BROWSER_LOOP


async def _until(check: Any, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():  # noqa: ASYNC110 - polls the console, not an event
            await asyncio.sleep(0.05)


async def test_replay_a_failed_delivery_and_enable_a_gone_endpoint(
    browser: Any, server: RunningServer, receiver: Receiver
) -> None:
    """A delivery the webhook refused (500) until the retries ran out is listed as failed,
    its attempts show time, status, latency and the answer's start; Replay sends it again
    and it is delivered. After a 410 Gone the endpoint's delivery is off; Enable delivery
    sends what waited."""
    ep = await server.create_endpoint(name="flaky", flow="echo", webhookUrl=receiver.url)
    receiver.respond = lambda _d: 500
    await server.post_message(ep, {"userId": "u1", "sessionId": "s1", "text": "ping"})
    await server.services.run_until_idle()

    console = await open_console(browser, server)
    page = console.page
    await console.visit(f"/console/endpoints/{ep['id']}/deliveries?status=failed")
    row = page.locator("table.list tbody tr").first
    assert "failed" in await row.inner_text()
    await row.locator("th a").click()
    await page.wait_for_url("**/console/deliveries/*")
    attempts = page.locator("section", has=page.get_by_role("heading", name="Attempts"))
    text = await attempts.inner_text()
    assert text.count("500") >= 4
    assert " ms" in text
    assert '"ok":false' in text.replace(" ", "")
    assert "UTC" in text

    receiver.respond = lambda _d: 200
    await page.get_by_role("button", name="Replay").click()
    await page.wait_for_url("**notice=replayed")
    await receiver.wait_for(1)

    async def delivered() -> bool:
        await console.visit(page.url.split(console.base)[1])
        return "delivered" in await page.locator("h2 .badge").inner_text()

    await _until(delivered)

    # 410 Gone switches the endpoint's delivery off; the console switches it back on.
    receiver.respond = lambda _d: 410
    await server.post_message(ep, {"userId": "u1", "sessionId": "s1", "text": "again"})
    await _until(lambda: _disabled(server, ep["id"]))
    receiver.respond = lambda _d: 200
    await server.post_message(ep, {"userId": "u1", "sessionId": "s1", "text": "held"})
    await server.services.run_until_idle()
    assert len(receiver.deliveries) == 1  # kept pending while delivery is off
    await console.visit(f"/console/endpoints/{ep['id']}/deliveries")
    assert "Delivery is off" in await page.get_by_role("alert").inner_text()
    await page.get_by_role("button", name="Enable delivery").click()
    await page.wait_for_url("**notice=enabled")
    await receiver.wait_for(2)
    assert receiver.deliveries[1].body["AIOutput"]["text"] == "You said: held"
    await console.check_source()


async def _disabled(server: RunningServer, endpoint_id: str) -> bool:
    return (await server.services.endpoints.get(endpoint_id)).delivery_disabled
