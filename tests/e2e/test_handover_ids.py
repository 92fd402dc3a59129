"""Handover URLs carry the session id encoded: a chat user's session id cannot point
the agent side at another endpoint's session."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.e2e import test_handover
from tests.support.receiver import Receiver
from tests.support.server import RunningServer

# The handover tests' server (flow "support") and provider fixtures.
srv = test_handover.srv
provider = test_handover.provider


@pytest.fixture
async def victim_receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


async def test_session_id_cannot_redirect_the_reply_url(
    srv: RunningServer, receiver: Receiver, provider: Receiver, victim_receiver: Receiver
) -> None:
    """A session id full of ``../`` and ``?`` yields a replyUrl that, followed by an agent's
    HTTP client, reaches that same session of the same endpoint: the other endpoint's
    user never gets the agent's message."""
    attacker = await srv.create_endpoint(
        name="a", flow="support", webhookUrl=receiver.url, handoverUrl=provider.url
    )
    victim = await srv.create_endpoint(name="v", flow="support", webhookUrl=victim_receiver.url)
    await srv.post_message(victim, {"userId": "v1", "sessionId": "victim", "text": "hi"})
    await victim_receiver.wait_for(1)

    evil = f"x/../../../../endpoints/{victim['id']}/sessions/victim/handover/messages?"
    await srv.post_message(attacker, {"userId": "u1", "sessionId": evil, "text": "human please"})
    (started,) = await provider.wait_for(1)
    reply_url = started.body["replyUrl"]

    async with srv.http.post(
        reply_url, json={"userId": "u1", "text": "agent here"}, headers=srv.admin
    ) as resp:
        assert resp.status == 202
    await srv.services.run_until_idle()
    assert len(victim_receiver.deliveries) == 1  # only the bot's own answer to "hi"
    assert victim["id"] not in reply_url.split("/sessions/")[0]
    assert "?" not in reply_url
    agent = [d for d in receiver.deliveries if d.body["AIOutput"].get("source") == "agent"]
    assert [(d.body["sessionId"], d.body["AIOutput"]["text"]) for d in agent] == [
        (evil, "agent here")
    ]


async def test_reply_to_a_session_the_endpoint_does_not_have_is_404(
    srv: RunningServer, receiver: Receiver, provider: Receiver
) -> None:
    """An agent reply or end naming a session that the endpoint does not have (e.g. one of
    another endpoint) is refused with 404 and a body naming it; nothing is queued."""
    ep = await srv.create_endpoint(
        name="a", flow="support", webhookUrl=receiver.url, handoverUrl=provider.url
    )
    other = await srv.create_endpoint(name="o", flow="support", webhookUrl=receiver.url)
    await srv.post_message(other, {"userId": "u", "sessionId": "theirs", "text": "hi"})
    await srv.services.run_until_idle()
    for path in ("/messages", "/end"):
        status, body = await srv.api(
            "POST",
            f"/api/v1/endpoints/{ep['id']}/sessions/theirs/handover{path}",
            {"userId": "u", "text": "x"},
        )
        assert status == 404
        assert "theirs" in body["error"]["message"]
    await srv.services.run_until_idle()
    assert len(receiver.deliveries) == 1
