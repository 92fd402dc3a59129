"""The OpenAPI document, made exact: every status an operation can answer, with the one
error schema; the security each operation needs; no FastAPI 422 anywhere.

Which errors an operation documents follows from what it is, the same way the server
decides them, so a new route is documented right without listing them:

- secured (admin routes, the ingress): 401;
- a path parameter: 404 (nothing with that id);
- a body or a query parameter: 400; a body: 413, and 415 on admin routes;
- every operation except the liveness probe and the metrics: 503 (database down);
- anything else (409 on a create, 429 on the ingress) the route declares itself with
  ``responses=errors.documented(...)`` or its ``openapi_extra``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from flowhook.http.errors import REASONS, ErrorBody
from flowhook.http.routing import ADMIN_SECURITY

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
SECURITY_SCHEMES = {
    "adminToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "The admin token (FLOWHOOK_ADMIN_TOKEN, or printed at start-up).",
    },
    "webhookKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Webhook-Key",
        "description": "An API key of the endpoint, when its authMethod is apiKey.",
    },
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "string"},
    }
}
_UNGUARDED = {"/healthz", "/metrics"}

_ENDPOINT = "/api/v1/endpoints/{endpoint_id}"
_BY_ID = {"endpoint_id": "$response.body#/id"}
_BY_TOKEN = {"url_token": "$response.body#/urlToken"}
# OpenAPI links: how an answer's ids feed the next call (generated clients and stateful
# testing follow them). (method, path, status) -> [(method, path, parameters)].
LINKS: dict[tuple[str, str, str], list[tuple[str, str, dict[str, str]]]] = {
    ("post", "/api/v1/endpoints", "201"): [
        ("get", _ENDPOINT, _BY_ID),
        ("patch", _ENDPOINT, _BY_ID),
        ("delete", _ENDPOINT, _BY_ID),
        ("post", _ENDPOINT + "/signing-secret/rotate", _BY_ID),
        ("post", _ENDPOINT + "/api-keys", _BY_ID),
        ("get", _ENDPOINT + "/api-keys", _BY_ID),
        ("get", _ENDPOINT + "/deliveries", _BY_ID),
        ("post", _ENDPOINT + "/deliveries/replay-failed", _BY_ID),
        ("get", _ENDPOINT + "/analytics", _BY_ID),
        ("post", "/endpoint/{url_token}", _BY_TOKEN),
        ("post", "/endpoint/{url_token}/inject", _BY_TOKEN),
        ("post", "/endpoint/{url_token}/notify", _BY_TOKEN),
    ],
    ("post", _ENDPOINT + "/api-keys", "201"): [
        (
            "delete",
            _ENDPOINT + "/api-keys/{key_id}",
            {"endpoint_id": "$request.path.endpoint_id", "key_id": "$response.body#/id"},
        ),
    ],
    ("get", _ENDPOINT + "/deliveries", "200"): [
        ("get", "/api/v1/deliveries/{delivery_id}", {"delivery_id": "$response.body#/items/0/id"}),
        (
            "post",
            "/api/v1/deliveries/{delivery_id}/replay",
            {"delivery_id": "$response.body#/items/0/id"},
        ),
    ],
}


def install(app: FastAPI) -> None:
    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app)
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]


def document(app: FastAPI) -> dict[str, Any]:
    doc = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    error_schema = ErrorBody.model_json_schema(
        by_alias=True, ref_template="#/components/schemas/{model}"
    )
    schemas.update(error_schema.pop("$defs", {}))
    schemas["ErrorBody"] = error_schema
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    components["securitySchemes"] = SECURITY_SCHEMES
    snapshot = schemas.get("Snapshot")
    if snapshot is not None:  # an import reads only files that say what they are
        snapshot["required"] = sorted({*snapshot.get("required", []), "format", "version"})
    metrics = doc.get("paths", {}).get("/metrics", {}).get("get")
    if metrics is not None:
        metrics["responses"]["200"]["content"] = {"text/plain": {"schema": {"type": "string"}}}
        metrics["security"] = [{}, {"adminToken": []}]  # FLOWHOOK_METRICS_REQUIRE_TOKEN
    _link(doc)
    for path, item in doc.get("paths", {}).items():
        for op in item.values():
            _complete(path, op, admin=op.get("security") == ADMIN_SECURITY)
    return doc


def _complete(path: str, op: dict[str, Any], *, admin: bool) -> None:
    responses: dict[str, Any] = op.setdefault("responses", {})
    responses.pop("422", None)
    params = op.get("parameters", [])
    has_body = "requestBody" in op
    codes: set[int] = set()
    if op.get("security"):
        codes.add(401)
    if any(p.get("in") == "path" for p in params):
        codes.add(404)
    if has_body or any(p.get("in") in ("query", "header") for p in params):
        codes.add(400)
    if has_body:
        codes.add(413)
        if admin:
            codes.add(415)
    if path not in _UNGUARDED:
        codes.add(503)
    for number in sorted(codes):
        responses.setdefault(str(number), {"description": REASONS[number]})
    for status, response in responses.items():
        if status.startswith(("4", "5")) and "content" not in response:
            response["content"] = {"application/json": {"schema": ERROR_REF}}
        if status in ("429", "503"):
            response.setdefault("headers", {}).update(_RETRY_AFTER)


def _link(doc: dict[str, Any]) -> None:
    paths = doc.get("paths", {})
    for (method, path, status), targets in LINKS.items():
        response = paths.get(path, {}).get(method, {}).get("responses", {}).get(status)
        if response is None:
            continue
        links = response.setdefault("links", {})
        for target_method, target_path, parameters in targets:
            target = paths.get(target_path, {}).get(target_method)
            if target is not None:
                op_id = target["operationId"]
                links[op_id] = {"operationId": op_id, "parameters": parameters}
