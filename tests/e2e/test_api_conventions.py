"""One convention across the API: the error body, the list shape, times, Allow, auth first."""

from __future__ import annotations

from typing import Any

from tests.support.receiver import Receiver
from tests.support.server import RunningServer


async def _raw(
    server: RunningServer,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, dict[str, str]]:
    async with server.http.request(
        method, server.base_url + path, data=body, headers=headers or {}
    ) as resp:
        payload = await resp.json(content_type=None) if await resp.read() else None
        return resp.status, payload, dict(resp.headers)


async def test_the_token_is_checked_before_the_body_is_read(server: RunningServer) -> None:
    """Malformed JSON without a token answers 401, not 400: nothing about the body is
    told to someone who may not use the API."""
    status, body, headers = await _raw(
        server, "POST", "/api/v1/endpoints", b"{not json", {"Content-Type": "application/json"}
    )
    assert (status, body["error"]["code"]) == (401, "unauthorized")
    assert headers["WWW-Authenticate"] == "Bearer"
    status, body, _ = await _raw(
        server,
        "POST",
        "/api/v1/endpoints/x/sessions/s/handover",
        b"\xff\xfe",
        {"Content-Type": "application/json", "Authorization": "Bearer wrong"},
    )
    assert status == 401


async def test_json_syntax_errors_name_line_and_column(server: RunningServer) -> None:
    """A body that is not JSON answers 400 with the line and column of the mistake, for
    the field "body" (not a character offset posing as a field)."""
    status, body, _ = await _raw(
        server,
        "POST",
        "/api/v1/endpoints",
        b'{\n  "name": "a",\n  "flow": echo\n}',
        {**server.admin, "Content-Type": "application/json"},
    )
    assert status == 400
    error = body["error"]
    assert error["field"] == "body"
    assert "line 3, column 11" in error["message"], error


async def test_invalid_utf8_is_named_as_such(server: RunningServer) -> None:
    """Bytes that are not UTF-8 answer 400 saying so, with the offending byte."""
    status, body, _ = await _raw(
        server,
        "POST",
        "/api/v1/endpoints",
        b'{"name": "caf\xe9"}',
        {**server.admin, "Content-Type": "application/json"},
    )
    assert status == 400
    assert "not valid UTF-8" in body["error"]["message"]
    assert "0xe9" in body["error"]["message"]


async def test_a_non_json_content_type_is_415(server: RunningServer) -> None:
    """A body sent as a form answers 415 naming the expected type."""
    status, body, _ = await _raw(
        server,
        "POST",
        "/api/v1/endpoints",
        b"name=a",
        {**server.admin, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert (status, body["error"]["expected"]) == (415, "application/json")


async def test_validation_messages_are_written_for_people(server: RunningServer) -> None:
    """pydantic's internal prefixes never reach a client: every problem is listed with its
    camelCase field and a plain message, and validation errors are 400, never 422."""
    status, body = await server.api(
        "POST",
        "/api/v1/endpoints",
        {"flow": "echo", "webhookUrl": "ftp://x/", "colour": "red", "rateLimitPerSecond": -1},
    )
    assert status == 400
    problems = {p["field"]: p["message"] for p in body["error"]["problems"]}
    assert problems["name"] == "is required"
    assert problems["colour"] == "is not a known field"
    assert problems["webhookUrl"] == "expected an absolute http:// or https:// URL"
    assert "rateLimitPerSecond" in problems
    assert "Value error" not in str(body)


async def test_allow_lists_every_method_of_a_path(server: RunningServer) -> None:
    """A wrong method answers 405 with an Allow header listing every method of the path,
    though GET and POST of /api/v1/snapshot are separate routes."""
    for method in ("OPTIONS", "DELETE"):
        status, body, headers = await _raw(server, method, "/api/v1/snapshot")
        assert status == 405
        assert headers["Allow"] == "GET, HEAD, OPTIONS, POST"
        assert body["error"]["code"] == "method_not_allowed"
    status, _, headers = await _raw(server, "PUT", "/api/v1/endpoints/some-id")
    assert (status, headers["Allow"]) == (405, "DELETE, GET, HEAD, OPTIONS, PATCH")


async def test_every_list_is_items_and_next_cursor(
    server: RunningServer, receiver: Receiver
) -> None:
    """Endpoints, API keys and flows are listed as {items, nextCursor}; following
    nextCursor visits every item once, in order."""
    created = [
        (await server.create_endpoint(name=f"e{i}", flow="echo", webhookUrl=receiver.url))["id"]
        for i in range(5)
    ]
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        status, page = await server.api("GET", "/api/v1/endpoints" + query)
        assert status == 200
        assert set(page) == {"items", "nextCursor"}
        seen += [item["id"] for item in page["items"]]
        pages += 1
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert (seen, pages) == (created, 3)
    status, flows = await server.api("GET", "/api/v1/flows")
    assert (status, flows["nextCursor"]) == (200, None)
    assert "order-help" in flows["items"]
    status, keys = await server.api("GET", f"/api/v1/endpoints/{created[0]}/api-keys")
    assert (status, keys) == (200, {"items": [], "nextCursor": None})


async def test_transcripts_and_analytics_speak_iso_8601(
    server: RunningServer, receiver: Receiver
) -> None:
    """Transcript entries and the analytics range carry ISO 8601 times, not Unix floats."""
    ep = await server.create_endpoint(name="t", flow="echo", webhookUrl=receiver.url)
    status, _ = await server.post_message(ep, {"userId": "u", "sessionId": "s", "text": "hi"})
    assert status == 202
    await server.services.run_until_idle()
    status, page = await server.api(
        "GET", f"/api/v1/endpoints/{ep['id']}/sessions/s/transcript?limit=1"
    )
    assert status == 200
    entry = page["items"][0]
    assert isinstance(entry["at"], str)
    assert entry["at"][4] == "-"
    assert "T" in entry["at"]
    assert page["nextCursor"] == str(entry["id"])
    status, rest = await server.api(
        "GET", f"/api/v1/endpoints/{ep['id']}/sessions/s/transcript?cursor={page['nextCursor']}"
    )
    assert status == 200
    assert rest["items"]
    assert rest["items"][0]["id"] > entry["id"]
    status, stats = await server.api("GET", f"/api/v1/endpoints/{ep['id']}/analytics")
    assert status == 200
    assert "T" in stats["since"]
    assert "T" in stats["until"]
    assert stats["messagesIn"] == 1


async def test_error_details_are_camel_case(server: RunningServer, receiver: Receiver) -> None:
    """The 429 body says retryAfter (camelCase, like every body), matching Retry-After."""
    ep = await server.create_endpoint(
        name="r", flow="echo", webhookUrl=receiver.url, rateLimitPerSecond=1, rateLimitBurst=1
    )
    statuses = []
    for _ in range(3):
        statuses.append(
            await server.post_message(ep, {"userId": "u", "sessionId": "s", "text": "x"})
        )
    limited = [body for status, body in statuses if status == 429]
    assert limited, statuses
    assert "retryAfter" in limited[0]["error"]
    assert "retry_after" not in str(limited[0])


async def test_the_openapi_document_is_exact(server: RunningServer) -> None:
    """Every operation documents its errors with the one error schema and the security it
    needs; no 422; the snapshot export is an object and the imports document bodies."""
    status, doc, _ = await _raw(server, "GET", "/openapi.json")
    assert status == 200
    assert set(doc["components"]["securitySchemes"]) == {"adminToken", "webhookKey"}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            responses = op["responses"]
            assert "422" not in responses, (method, path)
            for code, response in responses.items():
                if code.startswith("4") or (code == "503" and path != "/readyz"):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path)
            if path.startswith("/api/v1/"):
                assert op["security"] == [{"adminToken": []}], (method, path)
                assert "401" in responses, (method, path)
    ingress = doc["paths"]["/endpoint/{url_token}"]["post"]
    assert ingress["security"] == [{"webhookKey": []}, {}]
    assert {"400", "401", "404", "413", "429", "503"} <= set(ingress["responses"])
    assert "anyOf" in ingress["requestBody"]["content"]["application/json"]["schema"]
    export = doc["paths"]["/api/v1/snapshot"]["get"]["responses"]["200"]["content"]
    assert export["application/json"]["schema"] == {"$ref": "#/components/schemas/Snapshot"}
    assert "requestBody" in doc["paths"]["/api/v1/snapshot"]["post"]
    for suffix in ("", "/messages", "/end"):
        path = "/api/v1/endpoints/{endpoint_id}/sessions/{session_id}/handover" + suffix
        assert "requestBody" in doc["paths"][path]["post"], path
    update = doc["components"]["schemas"]["EndpointUpdate"]["properties"]
    assert "anyOf" not in update["authMethod"]  # null is refused, so not in the schema
    assert any(o.get("type") == "null" for o in update["locale"]["anyOf"])
