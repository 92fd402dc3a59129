"""The generic endpoint settings: inject and notify, rest endpoints, rate limit, data
protection, session timeout; each through the real server and a real receiver."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support.receiver import Receiver
from tests.support.server import RunningServer

MSG = {"userId": "u1", "sessionId": "s1", "text": "hello"}


async def scoped(
    server: RunningServer, ep: dict[str, Any], what: str, body: Any, headers: dict[str, str]
) -> tuple[int, Any]:
    url = f"{ep['endpointUrl']}/{what}"
    async with server.http.post(url, json=body, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_inject_runs_the_flow_and_needs_the_admin_token(
    server: RunningServer, receiver: Receiver
) -> None:
    """Inject on an endpoint without API keys needs the admin token, then runs the flow and
    delivers its output to the webhook; it is validated like the ingress."""
    ep = await server.create_endpoint(name="i", flow="echo", webhookUrl=receiver.url)
    status, body = await scoped(server, ep, "inject", MSG, {})
    assert (status, body["error"]["code"]) == (401, "unauthorized")
    status, body = await scoped(server, ep, "inject", {"userId": "u1"}, server.admin)
    assert (status, body["error"]["field"]) == (400, "sessionId")
    status, body = await scoped(server, ep, "inject", MSG, server.admin)
    assert status == 202
    (delivery,) = await receiver.wait_for(1)
    assert delivery.body["AIOutput"]["text"] == "You said: hello"
    assert delivery.body["AIOutput"]["traceId"] == body["traceId"]


async def test_inject_and_notify_use_the_api_key_of_a_keyed_endpoint(
    server: RunningServer, receiver: Receiver
) -> None:
    """On an endpoint with API keys, inject and notify take its X-Webhook-Key (the admin
    token alone is not enough)."""
    ep = await server.create_endpoint(
        name="k", flow="echo", webhookUrl=receiver.url, authMethod="apiKey"
    )
    _, key = await server.api("POST", f"/api/v1/endpoints/{ep['id']}/api-keys", {})
    assert (await scoped(server, ep, "notify", MSG, server.admin))[0] == 401
    assert (await scoped(server, ep, "notify", MSG, {"X-Webhook-Key": key["key"]}))[0] == 202
    assert (await scoped(server, ep, "inject", MSG, {"X-Webhook-Key": key["key"]}))[0] == 202
    await receiver.wait_for(2)


async def test_notify_keeps_order_with_normal_traffic(
    server: RunningServer, receiver: Receiver
) -> None:
    """A notify is delivered as is (the flow does not run), between the outputs of the
    messages sent before and after it in the same session."""
    ep = await server.create_endpoint(name="n", flow="echo", webhookUrl=receiver.url)
    for i in range(10):
        assert (await server.post_message(ep, {**MSG, "text": f"m{i}"}))[0] == 202
        status, _ = await scoped(
            server, ep, "notify", {**MSG, "text": f"note {i}", "data": {"n": i}}, server.admin
        )
        assert status == 202
    await receiver.wait_for(20)
    texts = [b["AIOutput"]["text"] for b in receiver.bodies()]
    assert texts == [t for i in range(10) for t in (f"You said: m{i}", f"note {i}")]
    assert receiver.bodies()[1]["AIOutput"]["data"] == {"n": 0}


async def test_rest_endpoint_answers_with_the_outputs(
    server: RunningServer, receiver: Receiver
) -> None:
    """A rest endpoint needs no webhook, answers each message with its turn's outputs
    (keeping session state across turns), and refuses inject/notify."""
    status, ep = await server.api(
        "POST", "/api/v1/endpoints", {"name": "r", "flow": "order-help", "type": "rest"}
    )
    assert status == 201
    assert (ep["type"], ep["webhookUrl"]) == ("rest", None)
    status, first = await server.post_message(ep, {**MSG, "text": "I need help"})
    assert status == 200
    assert first["userId"] == "u1"
    assert [o["text"] for o in first["outputs"]] == [
        "I'd be happy to help. Could you please provide your order number?"
    ]
    assert first["outputs"][0]["traceId"] == first["traceId"]
    status, second = await server.post_message(ep, {**MSG, "text": "It's 12345"})
    assert status == 200
    assert second["outputs"][0]["text"].startswith("Thanks! I found order 12345.")
    status, body = await scoped(server, ep, "notify", MSG, server.admin)
    assert (status, body["error"]["field"]) == (400, "type")
    status, body = await server.api(
        "POST", "/api/v1/endpoints", {"name": "w", "flow": "echo", "type": "webhook"}
    )
    assert (status, body["error"]["field"]) == (400, "webhookUrl")
    await server.services.run_until_idle()
    assert receiver.deliveries == []


async def test_rate_limit_answers_429_with_retry_after(
    server: RunningServer, receiver: Receiver
) -> None:
    """Beyond its rate and burst, an endpoint's ingress answers 429 with Retry-After and a
    JSON error; the refused message is not stored."""
    ep = await server.create_endpoint(
        name="rl", flow="echo", webhookUrl=receiver.url, rateLimitPerSecond=0.5, rateLimitBurst=2
    )
    assert (ep["rateLimitPerSecond"], ep["rateLimitBurst"]) == (0.5, 2)
    assert [(await server.post_message(ep, MSG))[0] for _ in range(2)] == [202, 202]
    async with server.http.post(ep["endpointUrl"], json=MSG) as resp:
        assert resp.status == 429
        assert int(resp.headers["Retry-After"]) >= 1
        assert (await resp.json())["error"]["code"] == "rate_limited"
    await receiver.wait_for(2)
    await server.services.run_until_idle()
    assert len(receiver.deliveries) == 2


async def test_masked_endpoint_flags_outputs_and_logs_no_message_text(
    server: RunningServer, receiver: Receiver, capfd: pytest.CaptureFixture[str]
) -> None:
    """With maskSensitiveLogging every output says disableSensitiveLogging: true, and no
    log line carries the message's text or data."""
    ep = await server.create_endpoint(
        name="m", flow="echo", webhookUrl=receiver.url, maskSensitiveLogging=True
    )
    secret = {**MSG, "text": "my card is 4111-1111", "data": {"iban": "DE89370400440532013000"}}
    assert (await server.post_message(ep, secret))[0] == 202
    (delivery,) = await receiver.wait_for(1)
    assert delivery.body["AIOutput"]["disableSensitiveLogging"] is True
    out, err = capfd.readouterr()
    assert "4111-1111" not in out + err
    assert "DE89370400440532013000" not in out + err


async def test_settings_are_changed_and_cleared_with_patch(
    server: RunningServer, receiver: Receiver
) -> None:
    """PATCH sets a setting, null resets it to its default, other settings stay."""
    ep = await server.create_endpoint(
        name="p", flow="echo", webhookUrl=receiver.url, sessionTimeoutSeconds=60
    )
    path = f"/api/v1/endpoints/{ep['id']}"
    _, body = await server.api("PATCH", path, {"maskSensitiveLogging": True})
    assert (body["sessionTimeoutSeconds"], body["maskSensitiveLogging"]) == (60, True)
    _, body = await server.api("PATCH", path, {"sessionTimeoutSeconds": None})
    assert (body["sessionTimeoutSeconds"], body["maskSensitiveLogging"]) == (None, True)
    status, body = await server.api("PATCH", path, {"rateLimitPerSecond": -1})
    assert (status, body["error"]["field"]) == (400, "rateLimitPerSecond")


async def test_session_timeout_per_endpoint_starts_a_fresh_session(
    server: RunningServer, receiver: Receiver
) -> None:
    """After the endpoint's idle timeout, the next message starts the flow afresh instead
    of answering the question the session waited at."""
    ep = await server.create_endpoint(
        name="t", flow="order-help", webhookUrl=receiver.url, sessionTimeoutSeconds=0.3
    )
    await server.post_message(ep, {**MSG, "text": "help"})
    await receiver.wait_for(1)
    await asyncio.sleep(0.5)  # longer than the endpoint's idle timeout
    await server.post_message(ep, {**MSG, "text": "12345"})
    await receiver.wait_for(2)
    assert receiver.bodies()[1]["AIOutput"]["text"].startswith("I'd be happy to help")
