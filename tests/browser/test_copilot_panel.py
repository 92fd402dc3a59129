"""The conversation view shows the copilot's latest suggestions to the agent during a
handover, live (server-sent events), read from the same session state as the copilot API;
a suggestion goes into the agent's reply box with one click."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio

from tests.browser.conftest import BROWSER_LOOP, LOOP
from tests.browser.console import open_console
from tests.support.receiver import Receiver
from tests.support.server import RunningServer, running_server

pytestmark = BROWSER_LOOP

SUPPORT = """
name: support
nodes:
  route:
    type: if
    condition: input.text == 'human please'
    then: escalate
    else: answer
  answer:
    type: say
    text: "bot: {{ input.text }}"
  escalate:
    type: handover
    text: "Connecting you to a person."
"""

ASSIST = """
name: assist
nodes:
  route:
    type: if
    condition: input.data.copilot.from == 'user'
    then: reply
    else: summary
  reply:
    type: say
    text: "Sorry about that: {{ input.text }}"
    data: {kind: suggestedReply}
    next: action
  action:
    type: say
    text: "Offer a refund"
    data: {kind: nextBestAction}
  summary:
    type: say
    text: "Agent said: {{ input.text }}"
    data: {kind: summary}
"""


@pytest_asyncio.fixture(loop_scope=LOOP)
async def server(tmp_path: Path, db_url: str) -> AsyncIterator[RunningServer]:
    """The real server with a support flow that hands over and a copilot flow."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "support.yaml").write_text(SUPPORT)
    (flows / "assist.yaml").write_text(ASSIST)
    async with running_server(tmp_path, db_url, flows_dir=flows) as s:
        yield s


@pytest_asyncio.fixture(loop_scope=LOOP)
async def provider() -> AsyncIterator[Receiver]:
    """The handover provider's webhook (the agent desk)."""
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


async def test_copilot_suggestions_appear_live_in_the_conversation_view(
    browser: Any,
    server: RunningServer,
    receiver: Receiver,
    provider: Receiver,
    shots: list[Path],
) -> None:
    """No copilot panel before the handover; once handed over the transcript page shows a
    "Copilot suggestions" heading and list; a user message's suggestions appear in it
    without a reload, as text (markup shown, not run), the same as the copilot API
    answers and the provider's copilot event carries; "Use in reply" puts a suggestion into the reply box and the agent's reply
    sent from there reaches the user's webhook and gets its own suggestion."""
    ep = await server.create_endpoint(
        name="support-desk",
        flow="support",
        webhookUrl=receiver.url,
        handoverUrl=provider.url,
        copilotFlow="assist",
    )
    user = {"userId": "u-1", "sessionId": "s1"}
    await server.post_message(ep, {**user, "text": "hello"})
    await receiver.wait_for(1)

    console = await open_console(browser, server)
    page = console.page
    await console.visit(f"/console/endpoints/{ep['id']}/transcript?session=s1")
    await page.locator("#live-state.on").wait_for()
    panel_heading = page.get_by_role("heading", name="Copilot suggestions")
    assert await panel_heading.count() == 0  # the bot still answers: nothing to suggest

    await server.post_message(ep, {**user, "text": "human please"})
    await panel_heading.wait_for()  # the handover reloads the page, now with the panel
    await page.locator("#live-state.on").wait_for()
    suggestions = page.get_by_role("list", name="Copilot suggestions").get_by_role("listitem")
    assert await suggestions.count() == 0
    assert "None yet" in await page.locator("#copilot-meta").inner_text()
    await page.evaluate("window.stillTheSamePage = true")

    hostile = 'my parcel <b>is</b> late & "lost"'
    status, _ = await server.post_message(ep, {**user, "text": hostile})
    assert status == 202
    first = suggestions.filter(has_text="Sorry about that")
    await first.wait_for()
    assert await page.evaluate("window.stillTheSamePage === true"), "the page reloaded"
    texts = await suggestions.all_inner_texts()
    assert len(texts) == 2
    assert f"Sorry about that: {hostile}" in texts[0]
    assert "suggestedReply" in texts[0]
    assert "Offer a refund" in texts[1]
    assert await page.locator("#copilot-list b").count() == 0
    status, api = await server.api("GET", f"/api/v1/endpoints/{ep['id']}/sessions/s1/copilot")
    assert status == 200
    assert [s["text"] for s in api["suggestions"]] == [
        f"Sorry about that: {hostile}",
        "Offer a refund",
    ]
    assert "user" in await page.locator("#copilot-meta").inner_text()
    events = [e.body for e in await provider.wait_for(3)]
    assert [e["event"] for e in events] == ["handover.started", "message", "copilot"]
    assert events[2]["suggestions"] == api["suggestions"]
    await console.shot(shots, "transcript-copilot")

    await first.get_by_role("button", name="Use in reply").click()
    reply = page.get_by_label("Reply as the agent")
    assert await reply.input_value() == f"Sorry about that: {hostile}"
    await reply.fill(await reply.input_value() + " We will refund you.")
    await page.get_by_role("button", name="Send reply").click()
    await page.wait_for_url("**notice=sent")
    sent = [d.body["AIOutput"] for d in await receiver.wait_for(3)]
    assert sent[-1]["source"] == "agent"
    assert sent[-1]["text"] == f"Sorry about that: {hostile} We will refund you."
    await suggestions.filter(has_text="Agent said: Sorry about that").wait_for()
    await console.check_source()
