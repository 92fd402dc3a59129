"""Copilot: during a handover a second flow runs on every user and agent message; its
suggestions reach the handover provider as copilot events and the agent API, never the
user. Real server, real receivers (user webhook and provider), both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.receiver import Receiver
from tests.support.server import RunningServer, running_server

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
    then: count
    else: summary
  count:
    type: set
    context:
      seen: "{{ (context.seen or 0) + 1 }}"
    next: reply
  reply:
    type: say
    text: "Suggest: sorry about '{{ input.text }}' (user message {{ context.seen }})"
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

BROKEN = """
name: broken
nodes:
  boom:
    type: say
    text: "{{ 1 // 0 }}"
"""


@pytest.fixture
async def provider() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


@pytest.fixture
async def srv(tmp_path: Path, db_url: str) -> AsyncIterator[RunningServer]:
    flows = tmp_path / "flows"
    flows.mkdir()
    for name, text in (("support", SUPPORT), ("assist", ASSIST), ("broken", BROKEN)):
        (flows / f"{name}.yaml").write_text(text)
    async with running_server(tmp_path, db_url, flows_dir=flows) as s:
        yield s


async def suggestions(srv: RunningServer, ep: dict[str, Any]) -> dict[str, Any]:
    status, body = await srv.api("GET", f"/api/v1/endpoints/{ep['id']}/sessions/s1/copilot")
    assert status == 200, body
    assert isinstance(body, dict)
    return body


async def test_copilot_suggests_to_the_agent_on_user_and_agent_messages(
    srv: RunningServer, receiver: Receiver, provider: Receiver
) -> None:
    """Before the handover the copilot is silent; once handed over every user message
    and every agent reply runs the copilot flow (with its own memory across messages),
    whose outputs reach the provider as copilot events and the agent API as the latest
    suggestions, while the user's webhook gets only the agent's reply."""
    ep = await srv.create_endpoint(
        name="s",
        flow="support",
        webhookUrl=receiver.url,
        handoverUrl=provider.url,
        copilotFlow="assist",
    )
    assert ep["copilotFlow"] == "assist"
    user = {"userId": "u1", "sessionId": "s1"}
    await srv.post_message(ep, {**user, "text": "hello"})
    await receiver.wait_for(1)
    assert (await suggestions(srv, ep))["suggestions"] == []
    await srv.post_message(ep, {**user, "text": "human please"})
    await srv.post_message(ep, {**user, "text": "my parcel is late"})
    await srv.post_message(ep, {**user, "text": "still late"})
    events = await provider.wait_for(5)
    assert [e.body["event"] for e in events] == [
        "handover.started",
        "message",
        "copilot",
        "message",
        "copilot",
    ]
    first, second = events[2].body, events[4].body
    assert first["from"] == "user"
    assert first["sessionId"] == "s1"
    assert first["suggestions"] == [
        {
            "text": "Suggest: sorry about 'my parcel is late' (user message 1)",
            "data": {"kind": "suggestedReply"},
        },
        {"text": "Offer a refund", "data": {"kind": "nextBestAction"}},
    ]
    assert second["suggestions"][0]["text"].endswith("(user message 2)")
    latest = await suggestions(srv, ep)
    assert latest["handedOver"] is True
    assert latest["traceId"] == second["traceId"]
    assert latest["suggestions"] == second["suggestions"]

    status, _ = await srv.api(
        "POST",
        f"/api/v1/endpoints/{ep['id']}/sessions/s1/handover/messages",
        {"userId": "u1", "text": "I can refund you"},
    )
    assert status == 202
    summary = (await provider.wait_for(6))[5].body
    assert (summary["event"], summary["from"]) == ("copilot", "agent")
    assert summary["suggestions"] == [
        {"text": "Agent said: I can refund you", "data": {"kind": "summary"}}
    ]
    assert (await suggestions(srv, ep))["from"] == "agent"
    await srv.services.run_until_idle()
    texts = [b["AIOutput"]["text"] for b in receiver.bodies()]
    assert texts == ["bot: hello", "Connecting you to a person.", "I can refund you"]


async def test_copilot_without_provider_and_a_failing_copilot(
    srv: RunningServer, receiver: Receiver, provider: Receiver
) -> None:
    """Without a handoverUrl the copilot still runs while the session is marked handed
    over (suggestions in the agent API, no events); a copilot flow that fails reaches
    neither the user nor stops the conversation; an unknown copilotFlow is refused naming the field; unknown endpoints 404."""
    ep = await srv.create_endpoint(
        name="n", flow="support", webhookUrl=receiver.url, copilotFlow="assist"
    )
    user = {"userId": "u1", "sessionId": "s1"}
    await srv.post_message(ep, {**user, "text": "human please"})
    await srv.post_message(ep, {**user, "text": "anyone"})
    await receiver.wait_for(2)
    await srv.services.run_until_idle()
    assert (await suggestions(srv, ep))["suggestions"][0]["text"].startswith("Suggest: sorry")

    broken = await srv.create_endpoint(
        name="b",
        flow="support",
        webhookUrl=receiver.url,
        handoverUrl=provider.url,
        copilotFlow="broken",
    )
    await srv.post_message(broken, {**user, "text": "human please"})
    await srv.post_message(broken, {**user, "text": "hello?"})
    await srv.services.run_until_idle()  # the agent answers a session that exists
    status, _ = await srv.api(
        "POST",
        f"/api/v1/endpoints/{broken['id']}/sessions/s1/handover/messages",
        {"userId": "u1", "text": "Hi"},
    )
    assert status == 202
    await receiver.wait_for(4)
    await srv.services.run_until_idle()
    events = [d.body["event"] for d in provider.deliveries]
    assert events[:2] == ["handover.started", "message"]
    assert set(events[2:]) <= {"copilot"}  # whatever the broken flow managed to say
    texts = [b["AIOutput"]["text"] for b in receiver.bodies()]
    assert texts[2:] == ["Connecting you to a person.", "Hi"]

    status, body = await srv.api("PATCH", f"/api/v1/endpoints/{ep['id']}", {"copilotFlow": "nope"})
    assert (status, body["error"]["field"]) == (400, "copilotFlow")
    status, _ = await srv.api("GET", "/api/v1/endpoints/nope/sessions/s1/copilot")
    assert status == 404
