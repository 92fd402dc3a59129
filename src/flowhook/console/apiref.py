"""The API reference, read from the app's own OpenAPI document and drawn server-side.

FastAPI's ``/docs`` loads Swagger UI from a CDN, which an offline or locked-down
deployment cannot reach; this view needs nothing but the document itself. It turns the
document into plain records (operations grouped by tag, the component schemas with their
properties) that a template lists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

METHODS = ("get", "post", "put", "patch", "delete", "head", "options")
MAX_DEPTH = 6  # how deep a schema is described inline before it is just "…"


@dataclass(frozen=True)
class Field:
    name: str
    where: str  # path, query, header, cookie or, for a schema, "property"
    type: str
    required: bool
    description: str = ""


@dataclass(frozen=True)
class Body:
    content_type: str
    type: str
    schema: str | None  # the component schema it refers to, when it is one
    properties: list[Field]  # an inline object's own (a component's are listed with it)
    description: str = ""


@dataclass(frozen=True)
class Answer:
    status: str
    description: str
    type: str
    schema: str | None


@dataclass(frozen=True)
class Operation:
    anchor: str
    method: str
    path: str
    summary: str
    description: str
    auth: str
    parameters: list[Field]
    bodies: list[Body]
    responses: list[Answer]


@dataclass
class Section:
    tag: str
    anchor: str
    operations: list[Operation] = field(default_factory=list)


@dataclass(frozen=True)
class Schema:
    name: str
    anchor: str
    type: str
    description: str
    properties: list[Field]


def anchor(*parts: str) -> str:
    """An id for a fragment link: letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower()).strip("-") or "x"


def ref_name(schema: Any) -> str | None:
    """The component a schema refers to (directly, in a list or as ``X or null``)."""
    if not isinstance(schema, dict):
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return ref.rsplit("/", 1)[-1]
    for key in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(key) or []:
            name = ref_name(option)
            if name is not None:
                return name
    return ref_name(schema.get("items"))


def type_of(schema: Any, depth: int = 0) -> str:
    """A schema in a few words: ``EndpointView``, ``list of string``, ``integer or null``."""
    if not isinstance(schema, dict) or depth > MAX_DEPTH:
        return "any" if depth <= MAX_DEPTH else "…"
    name = ref_name(schema) if "$ref" in schema else None
    if name is not None:
        return name
    if isinstance(schema.get("type"), str) and schema["type"] != "array" and "enum" not in schema:
        # an explicit type says more than alternatives that only narrow it
        return _plain(schema, depth)
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            return " or ".join(dict.fromkeys(type_of(o, depth + 1) for o in options))
    all_of = schema.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1:
        return type_of(all_of[0], depth + 1)
    if "const" in schema:
        return orjson.dumps(schema["const"]).decode()
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return " | ".join(orjson.dumps(v).decode() for v in enum)
    return _plain(schema, depth)


def _plain(schema: dict[str, Any], depth: int) -> str:
    kind = schema.get("type")
    if kind == "array":
        return f"list of {type_of(schema.get('items'), depth + 1)}"
    extra = schema.get("additionalProperties")
    if kind == "object" and isinstance(extra, dict) and extra:
        return f"map of {type_of(extra, depth + 1)}"
    if isinstance(kind, list):
        return " or ".join(str(k) for k in kind)
    if isinstance(kind, str):
        fmt = schema.get("format")
        return f"{kind} ({fmt})" if isinstance(fmt, str) else kind
    title = schema.get("title")
    return str(title) if title else "any"


def _auth(op: dict[str, Any], default: list[Any]) -> str:
    security = op.get("security", default)
    names = [name for requirement in security or [] for name in requirement]
    if not names:
        return "none"
    optional = any(not requirement for requirement in security)
    return " or ".join(dict.fromkeys(names)) + (" (optional)" if optional else "")


def _operation(path: str, method: str, op: dict[str, Any], security: list[Any]) -> Operation:
    parameters = [
        Field(
            name=str(p.get("name", "")),
            where=str(p.get("in", "")),
            type=type_of(p.get("schema")),
            required=bool(p.get("required")),
            description=str(p.get("description") or ""),
        )
        for p in op.get("parameters") or []
        if isinstance(p, dict)
    ]
    content = (op.get("requestBody") or {}).get("content") or {}
    bodies = []
    for kind, media in content.items():
        schema: Any = media.get("schema") if isinstance(media, dict) else None
        inline = isinstance(schema, dict) and "$ref" not in schema
        bodies.append(
            Body(
                content_type=kind,
                type=type_of(schema),
                schema=ref_name(schema),
                properties=properties_of(schema) if inline else [],
                description=str(schema.get("description") or "") if inline else "",
            )
        )
    responses = []
    for status, answer in sorted((op.get("responses") or {}).items()):
        first: Any = next(iter((answer.get("content") or {}).values()), {})
        schema = first.get("schema") if isinstance(first, dict) else None
        responses.append(
            Answer(
                status=str(status),
                description=str(answer.get("description") or ""),
                type=type_of(schema) if schema else "",
                schema=ref_name(schema),
            )
        )
    return Operation(
        anchor=anchor("op", method, path),
        method=method.upper(),
        path=path,
        summary=str(op.get("summary") or ""),
        description=str(op.get("description") or ""),
        auth=_auth(op, security),
        parameters=parameters,
        bodies=bodies,
        responses=responses,
    )


def sections(doc: dict[str, Any]) -> list[Section]:
    """The document's operations, grouped by their first tag in the order tags appear."""
    by_tag: dict[str, Section] = {}
    security = doc.get("security") or []
    for path, item in (doc.get("paths") or {}).items():
        for method, op in item.items():  # in the document's order
            if method not in METHODS or not isinstance(op, dict):
                continue
            tag = str((op.get("tags") or ["other"])[0])
            section = by_tag.setdefault(tag, Section(tag, anchor("tag", tag)))
            section.operations.append(_operation(path, method, op, security))
    return list(by_tag.values())


def schemas(doc: dict[str, Any]) -> list[Schema]:
    """The component schemas, each with its properties (required ones first)."""
    found = []
    for name, schema in sorted(((doc.get("components") or {}).get("schemas") or {}).items()):
        found.append(
            Schema(
                name=name,
                anchor=anchor("schema", name),
                type=type_of(schema) if "properties" not in schema else "object",
                description=str(schema.get("description") or ""),
                properties=properties_of(schema),
            )
        )
    return found


def properties_of(schema: Any) -> list[Field]:
    """An object schema's own properties, required ones first."""
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
        return []
    required = set(schema.get("required") or [])
    properties = [
        Field(
            name=prop,
            where="property",
            type=type_of(spec),
            required=prop in required,
            description=str(spec.get("description") or "") if isinstance(spec, dict) else "",
        )
        for prop, spec in schema["properties"].items()
    ]
    properties.sort(key=lambda f: not f.required)
    return properties
