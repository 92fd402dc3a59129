"""Try it sends through the real ingress and shows what the webhook received; the
conversation shows up live in another tab's transcript; the agent replies from there."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.browser.conftest import BROWSER_LOOP
from tests.browser.console import open_console
from tests.support.receiver import Receiver
from tests.support.server import RunningServer

pytestmark = BROWSER_LOOP


async def test_try_it_conversation_appears_live_in_the_transcript(
    browser: Any, server: RunningServer, receiver: Receiver
) -> None:
    """A message typed in Try it goes through POST /endpoint/<token>; the bot's answer is
    shown as the webhook received it (payload and status) and, without a reload, in the
    transcript open in another tab; an agent's reply from that tab reaches the webhook
    with source agent."""
    ep = await server.create_endpoint(name="shop", flow="order-help", webhookUrl=receiver.url)
    watcher = await open_console(browser, server)
    await watcher.visit(f"/console/endpoints/{ep['id']}/transcript?session=live-1")
    await watcher.page.locator("#live-state.on").wait_for()

    chat = await open_console(browser, server)
    page = chat.page
    await chat.visit(f"/console/endpoints/{ep['id']}/try")
    await page.get_by_label("sessionId").fill("live-1")
    await page.get_by_label("userId").fill("user123")
    await page.get_by_label("Message").fill("Hello, I need help with my order")
    async with page.expect_response(lambda r: "/endpoint/" in r.url) as sent:
        await page.get_by_label("Message").press("Enter")
    assert (await sent.value).status == 202

    hook = page.locator("#hook-log .hook").first
    await hook.locator(".badge.delivered").wait_for()
    shown = await hook.inner_text()
    assert "provide your order number" in shown
    assert '"source": "bot"' in shown
    assert "200" in shown
    (delivered,) = await receiver.wait_for(1)
    assert delivered.body["AIOutput"]["text"] in shown

    bubbles = watcher.page.locator("#transcript .msg")
    await watcher.page.locator("#transcript .msg.bot").wait_for()
    texts = await bubbles.all_inner_texts()
    assert "Hello, I need help with my order" in texts[0]
    assert "USER" in texts[0].upper()
    assert "provide your order number" in texts[1]
    await chat.check_source()
    await watcher.check_source()

    # The agent's side: take over, reply; the user's webhook gets source agent.
    await watcher.visit(f"/console/endpoints/{ep['id']}/transcript?session=live-1")
    await watcher.page.get_by_role("button", name="Take over from the bot").click()
    await watcher.page.wait_for_url("**notice=handed-over")
    # The page may show the bot still answering until the handover's turn ran, then
    # reload itself with the agent's controls: type once it shows the handover.
    await watcher.page.locator('#handover-state[data-handover="on"]').wait_for()
    await watcher.page.get_by_label("Reply as the agent").fill("Hi, this is Sam from support.")
    await watcher.page.get_by_role("button", name="Send reply").click()
    await watcher.page.wait_for_url("**notice=sent")
    deliveries = await receiver.wait_for(2)
    assert deliveries[1].body["AIOutput"]["source"] == "agent"
    assert deliveries[1].body["AIOutput"]["text"] == "Hi, this is Sam from support."
    await watcher.page.locator("#transcript .msg.agent").wait_for()
    await asyncio.sleep(0)
    await watcher.visit(f"/console/endpoints/{ep['id']}/conversations")
    row = watcher.page.get_by_role("row", name="live-1")
    assert "with an agent" in await row.inner_text()


async def test_a_reply_being_typed_survives_a_handover_change(
    browser: Any, server: RunningServer, receiver: Receiver
) -> None:
    """The transcript page reloads itself when the session's handover state changes, but
    not under an agent's hands: with a reply typed and not sent, it says that the state
    changed instead, keeps the text, and the reply is sent as typed."""
    ep = await server.create_endpoint(name="desk", flow="echo", webhookUrl=receiver.url)
    status, _ = await server.post_message(ep, {"userId": "u7", "sessionId": "s7", "text": "hi"})
    assert status == 202
    await receiver.wait_for(1)
    console = await open_console(browser, server)
    page = console.page
    await console.visit(f"/console/endpoints/{ep['id']}/transcript?session=s7")
    await page.locator("#live-state.on").wait_for()
    assert await page.locator("#handover-state").get_attribute("data-handover") == "off"
    reply = page.get_by_label("Reply as the agent")
    await reply.fill("One moment, checking your order.")

    path = f"/api/v1/endpoints/{ep['id']}/sessions/s7/handover"
    status, _ = await server.api("POST", path, {"userId": "u7"})
    assert status == 202
    await page.locator("#handover-changed").wait_for()
    assert await reply.input_value() == "One moment, checking your order."

    await page.get_by_role("button", name="Send reply").click()
    await page.wait_for_url("**notice=sent")
    deliveries = await receiver.wait_for(2)
    assert deliveries[1].body["AIOutput"]["source"] == "agent"
    assert deliveries[1].body["AIOutput"]["text"] == "One moment, checking your order."
    assert await page.locator("#handover-state").get_attribute("data-handover") == "on"
    await console.check_source()


async def test_try_it_on_a_rest_endpoint_with_an_api_key(
    browser: Any, server: RunningServer
) -> None:
    """On a rest endpoint that asks for API keys, Try it sends the key typed in (never
    stored), shows the HTTP answer's outputs, and shows the ingress's 401 for a wrong key."""
    ep = await server.create_endpoint(name="faq", flow="echo", type="rest", authMethod="apiKey")
    _, created = await server.api("POST", f"/api/v1/endpoints/{ep['id']}/api-keys", {})
    console = await open_console(browser, server)
    console.secrets.add(created["key"])
    page = console.page
    await console.visit(f"/console/endpoints/{ep['id']}/try")
    await page.get_by_label("API key (X-Webhook-Key)").fill("fhk_wrong")
    await page.get_by_label("Message").fill("anyone there?")
    await page.get_by_label("Message").press("Enter")
    error = page.locator("#chat-error")
    await error.wait_for()
    assert (await error.inner_text()).startswith("401")

    await page.get_by_label("API key (X-Webhook-Key)").fill(created["key"])
    await page.get_by_label("Message").fill("anyone there?")
    await page.get_by_label("Message").press("Enter")
    answer = page.locator("#hook-log .hook").first
    await answer.wait_for()
    assert "You said: anyone there?" in await answer.inner_text()
    await console.check_source()
