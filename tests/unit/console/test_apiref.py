"""The API reference's reading of an OpenAPI document: operations by tag with their
parameters, bodies and responses, schema names and types in words, safe anchors."""

from __future__ import annotations

from typing import Any

from flowhook.console import apiref

DOC: dict[str, Any] = {
    "paths": {
        "/api/v1/endpoints": {
            "post": {
                "tags": ["endpoints"],
                "summary": "Create an endpoint",
                "security": [{"adminToken": []}],
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/EndpointCreate"}
                        }
                    }
                },
                "responses": {
                    "422": {"description": "Invalid"},
                    "201": {
                        "description": "Created",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/EndpointCreated"}
                            }
                        },
                    },
                },
            },
            "get": {
                "tags": ["endpoints"],
                "parameters": [
                    {"name": "limit", "in": "query", "schema": {"type": "integer"}},
                    {
                        "name": "cursor",
                        "in": "query",
                        "required": True,
                        "schema": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                    },
                ],
                "responses": {"200": {"description": "OK"}},
            },
        },
        "/metrics": {"get": {"security": [{}, {"adminToken": []}], "responses": {}}},
    },
    "components": {
        "schemas": {
            "EndpointCreate": {
                "properties": {
                    "name": {"type": "string", "description": "Shown in the console"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "flow": {"type": "string"},
                },
                "required": ["flow"],
            },
            "Mode": {"enum": ["a", "b"]},
        }
    },
}


def test_operations_are_grouped_by_tag_with_their_body_and_responses() -> None:
    """POST /api/v1/endpoints is listed under its tag with its summary, auth, the body's
    schema name and its responses in status order; untagged operations go to "other";
    query parameters keep their type and whether they are required."""
    endpoints, other = apiref.sections(DOC)
    assert (endpoints.tag, other.tag) == ("endpoints", "other")
    create, listing = endpoints.operations
    assert (create.method, create.path, create.summary) == (
        "POST",
        "/api/v1/endpoints",
        "Create an endpoint",
    )
    assert create.auth == "adminToken"
    assert [(b.content_type, b.schema) for b in create.bodies] == [
        ("application/json", "EndpointCreate")
    ]
    assert [(r.status, r.schema) for r in create.responses] == [
        ("201", "EndpointCreated"),
        ("422", None),
    ]
    assert [(p.name, p.type, p.required) for p in listing.parameters] == [
        ("limit", "integer", False),
        ("cursor", "string or null", True),
    ]
    assert other.operations[0].auth == "adminToken (optional)"
    assert listing.auth == "none"


def test_schemas_list_required_properties_first() -> None:
    """Each component schema is listed with its properties (required first) and types."""
    create, mode = apiref.schemas(DOC)
    assert [(p.name, p.type, p.required) for p in create.properties] == [
        ("flow", "string", True),
        ("name", "string", False),
        ("tags", "list of string", False),
    ]
    assert create.properties[1].description == "Shown in the console"
    assert mode.type == '"a" | "b"'


def test_odd_schemas_and_anchors() -> None:
    """Schemas nested past the depth limit, maps, consts and junk are described without
    failing; anchors hold only letters, digits and dashes."""
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(50):
        deep = {"type": "array", "items": deep}
    assert apiref.type_of(deep).endswith("…")
    assert apiref.type_of({"type": "object", "additionalProperties": {"type": "integer"}}) == (
        "map of integer"
    )
    assert apiref.type_of({"const": "x"}) == '"x"'
    assert apiref.type_of("junk") == "any"
    assert apiref.type_of({"type": "string", "format": "date-time"}) == "string (date-time)"
    assert apiref.anchor("op", "post", "/endpoint/{url_token}") == "op-post-endpoint-url-token"
    assert apiref.anchor("<script>") == "script"
    assert apiref.sections({}) == []
    assert apiref.schemas({"components": None}) == []


def test_an_inline_body_lists_its_fields() -> None:
    """A body described inline (the ingress's message) is shown with its own fields and
    its type, not as "any" because of alternatives that only narrow it."""
    message = {
        "type": "object",
        "required": ["userId"],
        "description": "At least one of text and data.",
        "properties": {"text": {"type": ["string", "null"]}, "userId": {"type": "string"}},
        "anyOf": [{"required": ["text"]}, {"required": ["data"]}],
    }
    doc = {
        "paths": {
            "/endpoint/{url_token}": {
                "post": {
                    "requestBody": {"content": {"application/json": {"schema": message}}},
                    "responses": {},
                }
            }
        }
    }
    (body,) = apiref.sections(doc)[0].operations[0].bodies
    assert (body.type, body.schema, body.description) == (
        "object",
        None,
        "At least one of text and data.",
    )
    assert [(p.name, p.type, p.required) for p in body.properties] == [
        ("userId", "string", True),
        ("text", "string or null", False),
    ]
