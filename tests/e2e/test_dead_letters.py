"""Dead letters, replay, 410 Gone and the delivery switch, through the real server's admin
API and a real receiver, on both backends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from flowhook.delivery.dispatcher import GONE_ERROR
from tests.support.server import RunningServer
from tests.support.webhooks import WebhookReceiver, status


@pytest.fixture
async def hook() -> AsyncIterator[WebhookReceiver]:
    r = WebhookReceiver()
    await r.start()
    yield r
    await r.stop()


async def endpoint(server: RunningServer, hook: WebhookReceiver, name: str = "ep") -> str:
    ep = await server.create_endpoint(name=name, flow="echo", webhookUrl=hook.url)
    return str(ep["id"])


async def send(server: RunningServer, endpoint_id: str, session: str, text: str) -> None:
    _, ep = await server.api("GET", f"/api/v1/endpoints/{endpoint_id}")
    code, body = await server.post_message(ep, {"userId": "u", "sessionId": session, "text": text})
    assert code == 202, body


async def deliveries(server: RunningServer, endpoint_id: str, query: str = "") -> Any:
    code, body = await server.api("GET", f"/api/v1/endpoints/{endpoint_id}/deliveries{query}")
    assert code == 200, body
    return body


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat().replace("+00:00", "Z")


async def test_dead_letter_is_listed_shown_with_attempts_and_replayed(
    server: RunningServer, hook: WebhookReceiver
) -> None:
    """An output refused on every attempt ends failed; the API lists it, shows each attempt
    (time, status, duration, error, body excerpt) and the payload; a replay sends it again
    with the same webhook-id, keeps the old attempts and ends delivered."""
    hook.answer = status(500)
    eid = await endpoint(server, hook)
    await send(server, eid, "s1", "hello")
    await server.services.run_until_idle(10)

    page = await deliveries(server, eid, "?status=failed")
    (dead,) = page["items"]
    assert page["nextCursor"] is None
    assert (dead["status"], dead["attemptCount"], dead["lastStatusCode"]) == ("failed", 4, 500)
    code, shown = await server.api("GET", f"/api/v1/deliveries/{dead['id']}")
    assert code == 200
    assert shown["payload"]["AIOutput"]["text"] == "You said: hello"
    assert [(a["statusCode"], a["error"], a["responseBody"]) for a in shown["attempts"]] == [
        (500, "HTTP 500", "answer 500")
    ] * 4
    assert all(a["durationMs"] > 0 for a in shown["attempts"])
    assert {h.webhook_id for h in hook.hits} == {dead["id"]}

    hook.answer = status(200)
    code, replayed = await server.api("POST", f"/api/v1/deliveries/{dead['id']}/replay")
    assert code == 202, replayed
    assert replayed["status"] in ("pending", "delivered")
    await hook.wait_until(lambda: len(hook.accepted) == 1)
    await server.services.run_until_idle(10)
    _, shown = await server.api("GET", f"/api/v1/deliveries/{dead['id']}")
    assert (shown["status"], shown["attemptCount"]) == ("delivered", 1)
    assert shown["replayedAt"] is not None
    assert [a["statusCode"] for a in shown["attempts"]] == [500, 500, 500, 500, 200]
    assert hook.accepted[0].webhook_id == dead["id"]

    code, err = await server.api("POST", "/api/v1/deliveries/msg_nope/replay")
    assert (code, err["error"]["code"]) == (404, "not_found")


async def test_filters_paging_and_replay_of_failed_ones_in_a_time_range(
    server: RunningServer, hook: WebhookReceiver
) -> None:
    """Deliveries are filtered by session and status, paged with a cursor, and replay-failed
    takes exactly the failed ones created in [since, until)."""
    hook.answer = status(500)
    eid = await endpoint(server, hook)
    for session, text in (("A", "a1"), ("B", "b1"), ("B", "b2")):
        await send(server, eid, session, text)
    await server.services.run_until_idle(10)
    await asyncio.sleep(0.02)
    cut = time.time()
    await asyncio.sleep(0.02)
    await send(server, eid, "A", "a2")
    await server.services.run_until_idle(10)

    only_b = await deliveries(server, eid, "?sessionId=B")
    assert [i["sessionId"] for i in only_b["items"]] == ["B", "B"]
    first = await deliveries(server, eid, "?limit=3")
    rest = await deliveries(server, eid, f"?limit=3&cursor={first['nextCursor']}")
    assert len(first["items"]) == 3
    assert rest["nextCursor"] is None
    every = [i["id"] for i in first["items"] + rest["items"]]
    assert len(set(every)) == 4
    assert (await deliveries(server, eid, f"?since={iso(cut)}"))["items"][0]["sessionId"] == "A"

    hook.answer = status(200)
    path = f"/api/v1/endpoints/{eid}/deliveries/replay-failed"
    code, answer = await server.api("POST", path, {"since": iso(cut)})
    assert code == 202, answer
    assert (answer["replayed"], answer["deliveryReenabled"]) == (1, False)
    await hook.wait_until(lambda: len(hook.accepted) == 1)
    assert hook.accepted[0].text == "You said: a2"
    code, answer = await server.api("POST", path, {"until": iso(cut)})
    assert answer["replayed"] == 3
    await hook.wait_until(lambda: len(hook.accepted) == 4)
    await server.services.run_until_idle(10)
    assert (await deliveries(server, eid, "?status=failed"))["items"] == []

    code, err = await server.api("POST", path, {"since": iso(cut), "until": iso(cut - 1)})
    assert (code, err["error"]["field"]) == (400, "since")
    code, err = await server.api("GET", f"/api/v1/endpoints/{eid}/deliveries?cursor=x")
    assert (code, err["error"]["field"]) == (400, "cursor")
    code, _ = await server.api("GET", "/api/v1/endpoints/nope/deliveries")
    assert code == 404


async def test_410_switches_delivery_off_until_reenabled_then_replay(
    server: RunningServer, hook: WebhookReceiver
) -> None:
    """A 410 fails that output with a clear error and switches the endpoint's delivery off
    (shown in its view); later outputs are kept pending and not attempted; PATCH
    deliveryEnabled: true sends them; a replay sends the 410'd one."""
    hook.answer = status(410)
    eid = await endpoint(server, hook)
    await send(server, eid, "s1", "one")
    await server.services.run_until_idle(10)

    _, view = await server.api("GET", f"/api/v1/endpoints/{eid}")
    assert view["deliveryDisabled"] is True
    assert "410 Gone" in view["deliveryDisabledReason"]
    assert view["deliveryDisabledAt"] is not None
    (gone,) = (await deliveries(server, eid))["items"]
    assert (gone["status"], gone["lastStatusCode"], gone["lastError"]) == (
        "failed",
        410,
        GONE_ERROR,
    )

    hook.answer = status(200)
    await send(server, eid, "s1", "two")
    await send(server, eid, "s2", "three")
    await server.services.run_until_idle(10)
    assert len(hook.hits) == 1
    held = (await deliveries(server, eid, "?status=pending"))["items"]
    assert [(i["attemptCount"], i["sessionId"]) for i in held] == [(0, "s2"), (0, "s1")]

    code, view = await server.api("PATCH", f"/api/v1/endpoints/{eid}", {"deliveryEnabled": True})
    assert code == 200, view
    assert (view["deliveryDisabled"], view["deliveryDisabledReason"]) == (False, None)
    await hook.wait_until(lambda: len(hook.accepted) == 2)
    assert sorted(h.text for h in hook.accepted) == ["You said: three", "You said: two"]

    code, _ = await server.api("POST", f"/api/v1/deliveries/{gone['id']}/replay")
    assert code == 202
    await hook.wait_until(lambda: len(hook.accepted) == 3)
    assert hook.accepted[-1].webhook_id == gone["id"]


async def test_pausing_delivery_keeps_outputs_and_a_replay_switches_it_back_on(
    server: RunningServer, hook: WebhookReceiver
) -> None:
    """deliveryEnabled: false pauses delivery (outputs stay pending, not attempted);
    replay-failed switches it back on and the paused outputs go out too."""
    eid = await endpoint(server, hook)
    code, view = await server.api("PATCH", f"/api/v1/endpoints/{eid}", {"deliveryEnabled": False})
    assert code == 200
    assert view["deliveryDisabled"] is True
    assert "paused" in view["deliveryDisabledReason"]
    await send(server, eid, "s1", "kept")
    await server.services.run_until_idle(10)
    assert hook.hits == []

    code, answer = await server.api("POST", f"/api/v1/endpoints/{eid}/deliveries/replay-failed")
    assert code == 202
    assert (answer["replayed"], answer["deliveryReenabled"]) == (0, True)
    await hook.wait_until(lambda: len(hook.accepted) == 1)
    assert hook.accepted[0].text == "You said: kept"
    code, err = await server.api("PATCH", f"/api/v1/endpoints/{eid}", {"deliveryEnabled": None})
    assert (code, err["error"]["field"]) == (400, "deliveryEnabled")
