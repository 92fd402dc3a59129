"""The Webhook Endpoint as the reference describes it: request in, 202, outputs to the webhook."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.support.receiver import Receiver
from tests.support.server import RunningServer

REFERENCE_BODY = {
    "userId": "user123",
    "sessionId": "session123",
    "text": "Hello, I need help with my order",
    "data": {"exampleKey": "exampleValue"},
}


async def echo_endpoint(server: RunningServer, receiver: Receiver, **extra: Any) -> dict[str, Any]:
    return await server.create_endpoint(
        name="echo-ep", flow="echo", webhookUrl=receiver.url, **extra
    )


async def test_reference_request_gets_202_and_reference_shaped_output(
    server: RunningServer, receiver: Receiver
) -> None:
    """The reference cURL body yields 202 {traceId} and one POST of the reference response shape."""
    ep = await echo_endpoint(server, receiver, webhookUser="bot", webhookPassword="pw:1")
    status, body = await server.post_message(ep, REFERENCE_BODY)
    assert status == 202
    assert list(body) == ["traceId"]
    assert body["traceId"].startswith("endpoint-httpIncomingMessage-")
    (delivery,) = await receiver.wait_for(1)
    assert delivery.body == {
        "userId": "user123",
        "sessionId": "session123",
        "AIOutput": {
            "text": "You said: Hello, I need help with my order",
            "data": {"exampleKey": "exampleValue"},
            "traceId": body["traceId"],
            "disableSensitiveLogging": False,
            "source": "bot",
        },
    }
    assert delivery.headers["Content-Type"] == "application/json"
    expected_auth = "Basic " + base64.b64encode(b"bot:pw:1").decode()
    assert delivery.headers["Authorization"] == expected_auth


async def test_no_basic_auth_header_without_credentials(
    server: RunningServer, receiver: Receiver
) -> None:
    """Without webhook user/password, deliveries carry no Authorization header."""
    ep = await echo_endpoint(server, receiver)
    assert (await server.post_message(ep, {"userId": "u", "sessionId": "s", "text": "x"}))[0] == 202
    (delivery,) = await receiver.wait_for(1)
    assert "Authorization" not in delivery.headers


async def test_message_is_committed_when_202_is_sent(
    server: RunningServer, receiver: Receiver
) -> None:
    """By the time the 202 arrives, the message is in storage (pending or processed)."""
    ep = await echo_endpoint(server, receiver)
    status, body = await server.post_message(ep, REFERENCE_BODY)
    assert status == 202

    def stored_trace_ids(conn: Any) -> list[str]:
        return [r[0] for r in conn.exec_driver_sql("SELECT trace_id FROM messages").all()]

    assert await server.services.store._read(stored_trace_ids) == [body["traceId"]]


async def test_outputs_of_each_session_arrive_in_order(
    server: RunningServer, receiver: Receiver
) -> None:
    """Interleaved messages of several sessions are delivered in each session's posting order."""
    ep = await echo_endpoint(server, receiver)
    for i in range(30):
        for session in ("a", "b", "c"):
            status, _ = await server.post_message(
                ep, {"userId": "u", "sessionId": session, "text": str(i)}
            )
            assert status == 202
    await receiver.wait_for(90)
    for session in ("a", "b", "c"):
        texts = [b["AIOutput"]["text"] for b in receiver.bodies() if b["sessionId"] == session]
        assert texts == [f"You said: {i}" for i in range(30)]


async def test_data_only_and_text_only_messages_are_accepted(
    server: RunningServer, receiver: Receiver
) -> None:
    """Either text or data alone is a valid message."""
    ep = await echo_endpoint(server, receiver)
    assert (await server.post_message(ep, {"userId": "u", "sessionId": "s", "data": {"a": 1}}))[
        0
    ] == 202
    assert (await server.post_message(ep, {"userId": "u", "sessionId": "s", "text": "t"}))[0] == 202
    first, second = await receiver.wait_for(2)
    assert first.body["AIOutput"]["data"] == {"a": 1}
    assert second.body["AIOutput"]["text"] == "You said: t"


@pytest.mark.parametrize(
    ("body", "field", "expected"),
    [
        ({"sessionId": "s", "text": "x"}, "userId", "a non-empty string"),
        ({"userId": "", "sessionId": "s", "text": "x"}, "userId", "a non-empty string"),
        ({"userId": 7, "sessionId": "s", "text": "x"}, "userId", "a non-empty string"),
        ({"userId": "u", "text": "x"}, "sessionId", "a non-empty string"),
        ({"userId": "u", "sessionId": "  ", "text": "x"}, "sessionId", "a non-empty string"),
        ({"userId": "u", "sessionId": "s", "text": 5}, "text", "a string"),
        ({"userId": "u", "sessionId": "s", "data": [1]}, "data", "a JSON object"),
        ({"userId": "u", "sessionId": "s", "data": "x"}, "data", "a JSON object"),
        ({"userId": "u", "sessionId": "s"}, "text", "a non-empty text string and/or a data object"),
    ],
)
async def test_invalid_bodies_get_400_naming_the_field(
    server: RunningServer,
    receiver: Receiver,
    body: dict[str, Any],
    field: str,
    expected: str,
) -> None:
    """Each malformed body is refused with 400, the field and what was expected; nothing is stored."""
    ep = await echo_endpoint(server, receiver)
    status, answer = await server.post_message(ep, body)
    assert status == 400
    assert answer["error"]["field"] == field
    assert answer["error"]["expected"] == expected
    assert answer["error"]["code"] == "invalid_request"
    assert await server.services.store.pending_messages() == []


@pytest.mark.parametrize(
    "raw", [b"not json", b"", b"[1, 2]", b'"text"', b'{"userId": ', b"\xff\xfe"]
)
async def test_non_object_bodies_get_400(
    server: RunningServer, receiver: Receiver, raw: bytes
) -> None:
    """Bodies that are not a JSON object are refused with 400 and a JSON error."""
    ep = await echo_endpoint(server, receiver)
    status, answer = await server.post_message(ep, None, raw=raw)
    assert status == 400
    assert (
        answer["error"]["expected"] == "a JSON object"
        or "JSON object" in answer["error"]["expected"]
    )


async def test_body_over_the_limit_gets_413(server: RunningServer, receiver: Receiver) -> None:
    """A body larger than max_body_bytes (256 KiB by default) is refused with 413."""
    ep = await echo_endpoint(server, receiver)
    big = {"userId": "u", "sessionId": "s", "text": "x" * (256 * 1024)}
    status, answer = await server.post_message(ep, big)
    assert status == 413
    assert answer["error"]["limit"] == 256 * 1024
    ok = {"userId": "u", "sessionId": "s", "text": "x" * (200 * 1024)}
    assert (await server.post_message(ep, ok))[0] == 202


async def test_unknown_and_inactive_endpoints_get_404(
    server: RunningServer, receiver: Receiver
) -> None:
    """An unknown URL token, or an endpoint switched off, answers 404 and runs nothing."""
    ep = await echo_endpoint(server, receiver)
    bogus = dict(ep, endpointUrl=ep["endpointUrl"] + "x")
    assert (await server.post_message(bogus, REFERENCE_BODY))[0] == 404
    status, _ = await server.api("PATCH", f"/api/v1/endpoints/{ep['id']}", {"active": False})
    assert status == 200
    status, answer = await server.post_message(ep, REFERENCE_BODY)
    assert status == 404
    assert answer["error"]["code"] == "not_found"
    await server.services.run_until_idle()
    assert receiver.deliveries == []


async def test_api_key_authentication(server: RunningServer, receiver: Receiver) -> None:
    """With authMethod apiKey: missing, wrong and revoked keys get 401; a valid key gets 202."""
    ep = await echo_endpoint(server, receiver, authMethod="apiKey")
    assert (await server.post_message(ep, REFERENCE_BODY))[0] == 401
    status, created = await server.api(
        "POST", f"/api/v1/endpoints/{ep['id']}/api-keys", {"name": "crm"}
    )
    assert status == 201
    _, second = await server.api("POST", f"/api/v1/endpoints/{ep['id']}/api-keys", {})
    status, answer = await server.post_message(ep, REFERENCE_BODY, key=created["key"] + "x")
    assert (status, answer["error"]["code"]) == (401, "unauthorized")
    assert (await server.post_message(ep, REFERENCE_BODY, key=created["key"]))[0] == 202
    assert (await server.post_message(ep, REFERENCE_BODY, key=second["key"]))[0] == 202
    status, _ = await server.api("DELETE", f"/api/v1/endpoints/{ep['id']}/api-keys/{created['id']}")
    assert status == 204
    assert (await server.post_message(ep, REFERENCE_BODY, key=created["key"]))[0] == 401
    assert (await server.post_message(ep, REFERENCE_BODY, key=second["key"]))[0] == 202
    await receiver.wait_for(3)


async def test_accepted_but_unprocessed_messages_run_after_restart(
    server: RunningServer, receiver: Receiver
) -> None:
    """Messages committed to the inbox but not yet run are picked up when the server starts."""
    ep = await echo_endpoint(server, receiver)
    from flowhook.storage.records import InboundMessage

    store = server.services.store
    for i in range(3):
        await store.accept_message(
            InboundMessage(ep["id"], "s", "u", f"trace-{i}", f"m{i}", None, 0.0)
        )
    await server.services.runner.recover()
    await receiver.wait_for(3)
    assert [b["AIOutput"]["traceId"] for b in receiver.bodies()] == [
        "trace-0",
        "trace-1",
        "trace-2",
    ]


async def test_backlog_limit_answers_503_with_retry_after(
    tmp_path: Any, db_url: str, receiver: Receiver
) -> None:
    """When accepted messages waiting for their turn reach max_backlog, the ingress answers
    503 with Retry-After instead of growing memory; nothing accepted is lost."""
    from tests.support.server import running_server

    async with running_server(tmp_path, db_url, max_backlog=1) as srv:
        ep = await srv.create_endpoint(name="b", flow="echo", webhookUrl=receiver.url)
        srv.services.runner._backlog = 1  # as if one message were still waiting
        async with srv.http.post(
            ep["endpointUrl"], json={"userId": "u", "sessionId": "s", "text": "x"}
        ) as resp:
            assert resp.status == 503
            assert resp.headers["Retry-After"] == "1"
            assert (await resp.json())["error"]["code"] == "overloaded"
        srv.services.runner._backlog = 0
        assert (await srv.post_message(ep, {"userId": "u", "sessionId": "s", "text": "y"}))[
            0
        ] == 202
        (delivery,) = await receiver.wait_for(1)
        assert delivery.body["AIOutput"]["text"] == "You said: y"
