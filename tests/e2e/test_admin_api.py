"""The admin REST API: endpoints and API keys, bearer-protected, camelCase JSON."""

from __future__ import annotations

import re

import pytest

from tests.support.receiver import Receiver
from tests.support.server import RunningServer


async def test_create_returns_the_endpoint_without_its_password(
    server: RunningServer, receiver: Receiver
) -> None:
    """POST /endpoints answers 201 with the endpoint, its URL and token, never the password."""
    status, ep = await server.api(
        "POST",
        "/api/v1/endpoints",
        {
            "name": "support",
            "flow": "order-help",
            "webhookUrl": receiver.url,
            "webhookUser": "bot",
            "webhookPassword": "hunter2",
            "authMethod": "apiKey",
            "locale": "en-US",
        },
    )
    assert status == 201
    assert ep["endpointUrl"] == f"{server.base_url}/endpoint/{ep['urlToken']}"
    assert len(ep["urlToken"]) >= 22  # >= 128 bits in URL-safe base64
    assert (ep["name"], ep["flow"], ep["authMethod"], ep["webhookUser"], ep["active"]) == (
        "support",
        "order-help",
        "apiKey",
        "bot",
        True,
    )
    assert ep["hasWebhookPassword"] is True
    assert re.match(r"\d{4}-\d\d-\d\dT", ep["createdAt"])
    for path in ("/api/v1/endpoints", f"/api/v1/endpoints/{ep['id']}"):
        _, body = await server.api("GET", path)
        assert "hunter2" not in str(body)
    assert "hunter2" not in str(ep)


async def test_url_tokens_are_unique_and_random(server: RunningServer, receiver: Receiver) -> None:
    """Each endpoint gets its own unguessable token."""
    tokens = set()
    for i in range(5):
        ep = await server.create_endpoint(name=f"e{i}", flow="echo", webhookUrl=receiver.url)
        tokens.add(ep["urlToken"])
    assert len(tokens) == 5


async def test_name_clash_is_409_and_unknown_flow_is_400(
    server: RunningServer, receiver: Receiver
) -> None:
    """A duplicate name answers 409; a flow that does not exist answers 400 like every
    other invalid field, naming it and the flow it probably meant."""
    await server.create_endpoint(name="dup", flow="echo", webhookUrl=receiver.url)
    status, body = await server.api(
        "POST", "/api/v1/endpoints", {"name": "dup", "flow": "echo", "webhookUrl": receiver.url}
    )
    assert (status, body["error"]["code"], body["error"]["field"]) == (409, "conflict", "name")
    status, body = await server.api(
        "POST", "/api/v1/endpoints", {"name": "x", "flow": "nope", "webhookUrl": receiver.url}
    )
    assert (status, body["error"]["field"]) == (400, "flow")
    assert "nope" in body["error"]["message"]
    status, body = await server.api(
        "POST", "/api/v1/endpoints", {"name": "x", "flow": "order-hlep", "webhookUrl": receiver.url}
    )
    assert status == 400
    assert "did you mean 'order-help'?" in body["error"]["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"flow": "echo", "webhookUrl": "http://127.0.0.1/h"}, "name"),
        ({"name": "n", "flow": "echo", "webhookUrl": "ftp://x/y"}, "webhookUrl"),
        ({"name": "n", "flow": "echo", "webhookUrl": "http://u:p@h/y"}, "webhookUrl"),
        (
            {"name": "n", "flow": "echo", "webhookUrl": "http://h/", "authMethod": "basic"},
            "authMethod",
        ),
        ({"name": "n", "flow": "echo", "webhookUrl": "http://h/", "colour": "red"}, "colour"),
    ],
)
async def test_invalid_endpoint_bodies_get_400_naming_the_field(
    server: RunningServer, body: dict[str, str], field: str
) -> None:
    """Bad admin input answers 400 with the offending field."""
    status, answer = await server.api("POST", "/api/v1/endpoints", body)
    assert status == 400
    assert answer["error"]["field"] == field


async def test_update_and_delete(server: RunningServer, receiver: Receiver) -> None:
    """PATCH changes only the given fields; DELETE removes the endpoint and its URL."""
    ep = await server.create_endpoint(name="a", flow="echo", webhookUrl=receiver.url)
    status, body = await server.api(
        "PATCH", f"/api/v1/endpoints/{ep['id']}", {"name": "b", "flow": "order-help"}
    )
    assert status == 200
    assert (body["name"], body["flow"], body["webhookUrl"]) == ("b", "order-help", receiver.url)
    status, body = await server.api("PATCH", f"/api/v1/endpoints/{ep['id']}", {"flow": "nope"})
    assert (status, body["error"]["field"]) == (400, "flow")
    status, body = await server.api("PATCH", f"/api/v1/endpoints/{ep['id']}", {"name": None})
    assert (status, body["error"]["field"]) == (400, "name")
    assert (await server.api("DELETE", f"/api/v1/endpoints/{ep['id']}"))[0] == 204
    assert (await server.api("GET", f"/api/v1/endpoints/{ep['id']}"))[0] == 404
    assert (await server.api("DELETE", f"/api/v1/endpoints/{ep['id']}"))[0] == 404
    status, _ = await server.post_message(ep, {"userId": "u", "sessionId": "s", "text": "x"})
    assert status == 404


async def test_api_keys_are_shown_once_and_listed_without_the_key(
    server: RunningServer, receiver: Receiver
) -> None:
    """A created key is returned once; listings carry name, dates and prefix, never the key."""
    ep = await server.create_endpoint(
        name="k", flow="echo", webhookUrl=receiver.url, authMethod="apiKey"
    )
    status, created = await server.api(
        "POST", f"/api/v1/endpoints/{ep['id']}/api-keys", {"name": "crm"}
    )
    assert status == 201
    assert set(created) == {"id", "name", "key", "keyPrefix", "createdAt"}
    assert created["key"].startswith(created["keyPrefix"])
    status, listed = await server.api("GET", f"/api/v1/endpoints/{ep['id']}/api-keys")
    assert status == 200
    assert listed["nextCursor"] is None
    assert [(k["id"], k["name"], k["lastUsedAt"]) for k in listed["items"]] == [
        (created["id"], "crm", None)
    ]
    assert created["key"] not in str(listed)
    await server.post_message(
        ep, {"userId": "u", "sessionId": "s", "text": "x"}, key=created["key"]
    )
    await server.services.run_until_idle()
    _, listed = await server.api("GET", f"/api/v1/endpoints/{ep['id']}/api-keys")
    assert listed["items"][0]["lastUsedAt"] is not None
    status, body = await server.api("DELETE", f"/api/v1/endpoints/{ep['id']}/api-keys/nope")
    assert (status, body["error"]["code"]) == (404, "not_found")


async def test_admin_api_requires_the_bearer_token(server: RunningServer) -> None:
    """Without or with a wrong token the admin API answers 401 with a JSON error."""
    async with server.http.get(server.base_url + "/api/v1/endpoints") as resp:
        assert resp.status == 401
        assert (await resp.json())["error"]["code"] == "unauthorized"
    async with server.http.get(
        server.base_url + "/api/v1/endpoints", headers={"Authorization": "Bearer wrong"}
    ) as resp:
        assert resp.status == 401


async def test_health_readiness_and_docs(server: RunningServer) -> None:
    """/healthz and /readyz answer, /docs serves, and the OpenAPI covers ingress and admin."""
    async with server.http.get(server.base_url + "/healthz") as resp:
        assert (resp.status, await resp.json()) == (200, {"status": "ok"})
    async with server.http.get(server.base_url + "/readyz") as resp:
        assert resp.status == 200
        assert (await resp.json())["status"] == "ready"
    async with server.http.get(server.base_url + "/docs") as resp:
        assert resp.status == 200
    async with server.http.get(server.base_url + "/openapi.json") as resp:
        paths = (await resp.json())["paths"]
    assert "/endpoint/{url_token}" in paths
    assert "/api/v1/endpoints/{endpoint_id}/api-keys" in paths


async def test_unknown_routes_answer_json(server: RunningServer) -> None:
    """Unknown paths and wrong methods answer JSON errors, not HTML."""
    async with server.http.get(server.base_url + "/nope") as resp:
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "not_found"
    async with server.http.get(server.base_url + "/endpoint/abc") as resp:
        assert resp.status == 405
