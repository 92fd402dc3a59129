"""Every console page, at laptop and phone width: it renders (no 5xx), names every form
control, fits the screen without sideways scrolling, holds no secret in its source, and
is saved as a screenshot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.browser.conftest import BROWSER_LOOP
from tests.browser.console import LAPTOP, PHONE, Console, open_console, unlabelled_controls
from tests.support.receiver import Receiver
from tests.support.server import RunningServer

pytestmark = BROWSER_LOOP


async def _with_traffic(server: RunningServer, receiver: Receiver) -> dict[str, Any]:
    """Two endpoints with a conversation, a failed delivery and a key."""
    shop = await server.create_endpoint(
        name="shop-assistant",
        flow="order-help",
        webhookUrl=receiver.url,
        signing=True,
        webhookUser="hooks",
        webhookPassword="basic-auth-pw-1",
    )
    await server.create_endpoint(name="faq", flow="echo", type="rest", authMethod="apiKey")
    for session, texts in {
        "session-42": ["Hello, I need help with my order", "It's 12345", "yes please"],
        "session-43": ["Hi", "no idea"],
    }.items():
        for text in texts:
            await server.post_message(
                shop, {"userId": "user-7", "sessionId": session, "text": text}
            )
            await server.services.run_until_idle()
    receiver.respond = lambda _d: 503
    await server.post_message(
        shop, {"userId": "user-8", "sessionId": "session-44", "text": "Hello"}
    )
    await server.services.run_until_idle()
    receiver.respond = lambda _d: 200
    status, key = await server.api(
        "POST", f"/api/v1/endpoints/{shop['id']}/api-keys", {"name": "crm"}
    )
    assert status == 201
    return {"shop": shop, "key": key["key"], "secret": shop["signingSecret"]}


def pages(shop_id: str, delivery_id: str) -> list[tuple[str, str]]:
    base = f"/console/endpoints/{shop_id}"
    return [
        ("endpoints", "/"),
        ("endpoint-new", "/console/endpoints/new"),
        ("endpoint-settings", base),
        ("endpoint-keys", f"{base}/keys"),
        ("deliveries", f"{base}/deliveries"),
        ("delivery", f"/console/deliveries/{delivery_id}"),
        ("conversations", f"{base}/conversations"),
        ("transcript", f"{base}/transcript?session=session-42"),
        ("try-it", f"{base}/try"),
        ("flows", "/console/flows"),
        ("flow-graph", "/console/flows/order-help"),
        ("analytics", f"{base}/analytics?days=7"),
        ("cluster", "/console/cluster"),
        ("api-reference", "/console/api"),
    ]


async def _check_page(console: Console, path: str) -> None:
    await console.visit(path)
    assert await unlabelled_controls(console.page) == [], path
    overflow = await console.page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    if overflow > 1:
        wide = await console.page.evaluate(
            """() => [...document.querySelectorAll('body *')]
                .filter(el => el.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
                .filter(el => !el.parentElement.closest('.table-wrap, .tabs, .graph-wrap, pre')).slice(0, 8).map(el => el.tagName + '.' + el.className + ':' + Math.round(el.getBoundingClientRect().right))"""
        )
        raise AssertionError(f"{path} scrolls sideways by {overflow}px: {wide}")
    title = await console.page.title()
    assert title.endswith("· flowhook"), title
    assert await console.page.locator("h1").count() >= 1, path


async def test_every_page_renders_accessibly_at_laptop_and_phone_width(
    browser: Any, server: RunningServer, receiver: Receiver, shots: list[Path]
) -> None:
    """Each page answers 200 with a title and heading, every visible form control has a
    label, nothing scrolls sideways at 1366 or 390 px, the sources hold neither the admin
    token, the webhook password, the API key nor the signing secret; unknown records get
    a 404 page, not a 5xx."""
    made = await _with_traffic(server, receiver)
    page_of = await server.api(
        "GET", f"/api/v1/endpoints/{made['shop']['id']}/deliveries?status=failed"
    )
    failed_id = page_of[1]["items"][0]["id"]

    anonymous = await browser.new_context(viewport=LAPTOP)
    login = await anonymous.new_page()
    await login.goto(server.base_url + "/login")
    for d in shots:
        await login.screenshot(path=str(d / "login.png"))

    widths = [(LAPTOP, "")]
    if server.services.store.backend == "sqlite":  # the phone layout is the same on both
        widths.append((PHONE, "-phone"))
    for viewport, suffix in widths:
        console = await open_console(browser, server, viewport=viewport)
        console.secrets |= {made["key"], made["secret"], "basic-auth-pw-1"}
        for name, path in pages(made["shop"]["id"], failed_id):
            await _check_page(console, path)
            if name == "try-it":
                await console.page.get_by_label("Message").fill("Hello, I need help with my order")
                await console.page.get_by_label("Message").press("Enter")
                await console.page.locator("#hook-log .badge.delivered").wait_for()
            if name == "transcript":
                await console.page.locator("#live-state.on").wait_for()
            # The API reference is many screens long: its top is what the docs show.
            full = viewport is LAPTOP and name != "api-reference"
            await console.shot(shots, name + suffix, full=full)
        await console.visit("/console/endpoints/no-such-endpoint", status=404)
        await console.visit("/console/flows/no-such-flow", status=404)
        await console.visit("/console/deliveries/no-such-delivery", status=404)
        await console.visit("/console/no/such/page", status=404)
        await console.visit("/console/static/console.css")
        await console.page.context.close()
