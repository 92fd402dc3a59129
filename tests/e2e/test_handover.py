"""A full handover round trip with the generic webhook provider: the flow hands over,
the provider gets the transcript and the user's messages, the agent's replies reach the
user, and the flow takes over again at a named node."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.receiver import Receiver
from tests.support.server import RunningServer, running_server

FLOW = """
name: support
nodes:
  route:
    type: if
    condition: input.text == 'human please'
    then: escalate
    else: menu
  menu:
    type: if
    condition: input.text == 'menu'
    then: welcome_back
    else: answer
  answer:
    type: say
    text: "bot: {{ input.text }}"
  escalate:
    type: handover
    text: "Connecting you to a person."
  welcome_back:
    type: say
    text: "The bot is back. Anything else?"
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
    (flows / "support.yaml").write_text(FLOW)
    async with running_server(tmp_path, db_url, flows_dir=flows) as s:
        yield s


async def agent(srv: RunningServer, ep: dict[str, Any], path: str, body: Any) -> int:
    status, _ = await srv.api(
        "POST", f"/api/v1/endpoints/{ep['id']}/sessions/s1/handover{path}", body
    )
    return status


async def test_handover_round_trip(
    srv: RunningServer, receiver: Receiver, provider: Receiver
) -> None:
    """Handover node -> provider gets handover.started with the transcript; user messages
    go to the provider, not the flow; agent replies reach the user with source "agent";
    ending with resumeAt lets the flow speak again from that node."""
    ep = await srv.create_endpoint(
        name="s", flow="support", webhookUrl=receiver.url, handoverUrl=provider.url
    )
    user = {"userId": "u1", "sessionId": "s1"}
    await srv.post_message(ep, {**user, "text": "where is my parcel"})
    await srv.post_message(ep, {**user, "text": "human please"})
    await receiver.wait_for(2)
    (started,) = await provider.wait_for(1)
    assert started.body["event"] == "handover.started"
    assert [(e["direction"], e["text"]) for e in started.body["transcript"]] == [
        ("in", "where is my parcel"),
        ("out", "bot: where is my parcel"),
        ("in", "human please"),
        ("out", "Connecting you to a person."),
    ]
    assert started.body["replyUrl"].endswith("/sessions/s1/handover/messages")

    await srv.post_message(ep, {**user, "text": "hello, anyone?"})
    forwarded = (await provider.wait_for(2))[1]
    assert (forwarded.body["event"], forwarded.body["text"]) == ("message", "hello, anyone?")

    assert await agent(srv, ep, "/messages", {"userId": "u1", "text": "Hi, I'm Ann."}) == 202
    reply = (await receiver.wait_for(3))[2]
    assert (reply.body["AIOutput"]["text"], reply.body["AIOutput"]["source"]) == (
        "Hi, I'm Ann.",
        "agent",
    )

    assert (
        await agent(srv, ep, "/end", {"userId": "u1", "data": {"resumeAt": "welcome_back"}}) == 202
    )
    back = (await receiver.wait_for(4))[3]
    assert back.body["AIOutput"]["text"] == "The bot is back. Anything else?"
    assert (await provider.wait_for(3))[2].body["event"] == "handover.ended"

    await srv.post_message(ep, {**user, "text": "thanks"})
    assert (await receiver.wait_for(5))[4].body["AIOutput"]["text"] == "bot: thanks"
    await srv.services.run_until_idle()
    assert len(provider.deliveries) == 3
    _, stats = await srv.api("GET", f"/api/v1/endpoints/{ep['id']}/analytics")
    assert stats["handovers"] == 1


async def test_handover_api_starts_one_and_validates(
    srv: RunningServer, receiver: Receiver, provider: Receiver
) -> None:
    """The API can hand a session over; bad bodies and unknown endpoints get clear errors;
    the handover API needs the admin token."""
    ep = await srv.create_endpoint(
        name="s", flow="support", webhookUrl=receiver.url, handoverUrl=provider.url
    )
    assert await agent(srv, ep, "", {"userId": "u1", "data": {"reason": "vip"}}) == 202
    (started,) = await provider.wait_for(1)
    assert started.body["handover"]["reason"] == "vip"
    status, body = await srv.api(
        "POST", f"/api/v1/endpoints/{ep['id']}/sessions/s1/handover/messages", {"text": "x"}
    )
    assert (status, body["error"]["field"]) == (400, "userId")
    status, _ = await srv.api(
        "POST", "/api/v1/endpoints/nope/sessions/s1/handover", {"userId": "u"}
    )
    assert status == 404
    async with srv.http.post(
        f"{srv.base_url}/api/v1/endpoints/{ep['id']}/sessions/s1/handover/end",
        json={"userId": "u1"},
    ) as resp:
        assert resp.status == 401


async def test_handover_node_without_provider_only_marks_the_session(
    srv: RunningServer, receiver: Receiver
) -> None:
    """Without a handoverUrl the handover node marks the session and the flow keeps
    answering (nothing is forwarded anywhere)."""
    ep = await srv.create_endpoint(name="s", flow="support", webhookUrl=receiver.url)
    await srv.post_message(ep, {"userId": "u1", "sessionId": "s1", "text": "human please"})
    await srv.post_message(ep, {"userId": "u1", "sessionId": "s1", "text": "still there?"})
    texts = [d.body["AIOutput"]["text"] for d in await receiver.wait_for(2)]
    assert texts == ["Connecting you to a person.", "bot: still there?"]
