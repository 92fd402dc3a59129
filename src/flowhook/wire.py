"""The Webhook Endpoint's wire format: the request clients send and the body we deliver.

Parsing is hand-written rather than a pydantic model: it runs on every request
and every 400 must name the exact field and what was expected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from flowhook.errors import InvalidRequest
from flowhook.ids import uuid4_text
from flowhook.json_limits import DEFAULT_MAX_DEPTH, check_document, refused_by_orjson

# Output bodies larger than this are copied to their exact size (see ``output_body``).
_COMPACT_FROM = 4096

MAX_ID_LENGTH = 256
# C0 and C1 control characters and DEL: no id needs them, and they garble logs,
# terminals and the URLs ids end up in.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True, slots=True)
class InboundLimits:
    """What the ingress accepts beyond the wire format's types."""

    max_depth: int = DEFAULT_MAX_DEPTH
    max_id_length: int = MAX_ID_LENGTH


DEFAULT_LIMITS = InboundLimits()


@dataclass(frozen=True, slots=True)
class InboundBody:
    user_id: str
    session_id: str
    text: str | None
    data: dict[str, Any] | None


def new_trace_id() -> str:
    return f"endpoint-httpIncomingMessage-{uuid4_text()}"


def parse_inbound(raw: bytes, limits: InboundLimits = DEFAULT_LIMITS) -> InboundBody:
    """Validate a request body; raise InvalidRequest naming the first problem."""
    if not raw.strip():
        raise InvalidRequest(
            "request body is empty",
            expected="a JSON object with userId, sessionId, text and/or data",
        )
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        ours = refused_by_orjson(raw, str(exc), limits.max_depth)
        if ours is not None:
            raise ours from None
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as bad:  # name the real problem, not orjson's guess
            raise InvalidRequest(
                f"request body is not valid UTF-8: byte 0x{raw[bad.start]:02x} at offset "
                f"{bad.start}",
                field="body",
                expected="a JSON object encoded as UTF-8",
            ) from None
        raise InvalidRequest(
            f"request body is not valid JSON: {exc}", field="body", expected="a JSON object"
        ) from None
    if not isinstance(doc, dict):
        raise InvalidRequest(f"request body is a JSON {_json_type(doc)}", expected="a JSON object")
    check_document(raw, doc, limits.max_depth)
    user_id = _required_id(doc, "userId", limits.max_id_length)
    session_id = _required_id(doc, "sessionId", limits.max_id_length)
    text = doc.get("text")
    if text is not None and not isinstance(text, str):
        raise InvalidRequest(f"text is a {_json_type(text)}", field="text", expected="a string")
    if text is not None and "\x00" in text:
        raise _nul_error("text", "a string")
    data = doc.get("data")
    if data is not None and not isinstance(data, dict):
        raise InvalidRequest(
            f"data is a {_json_type(data)}", field="data", expected="a JSON object"
        )
    if not text and data is None:
        raise InvalidRequest(
            "the message has neither text nor data",
            field="text",
            expected="a non-empty text string and/or a data object",
        )
    return InboundBody(user_id, session_id, text, data)


def _required_id(doc: dict[str, Any], name: str, max_length: int) -> str:
    if name not in doc or doc[name] is None:
        raise InvalidRequest(f"{name} is missing", field=name, expected="a non-empty string")
    value = doc[name]
    if not isinstance(value, str):
        raise InvalidRequest(
            f"{name} is a {_json_type(value)}", field=name, expected="a non-empty string"
        )
    if not value.strip():
        raise InvalidRequest(f"{name} is empty", field=name, expected="a non-empty string")
    if "\x00" in value:
        raise _nul_error(name, "a non-empty string")
    if len(value) > max_length:
        raise InvalidRequest(
            f"{name} is {len(value)} characters long",
            field=name,
            expected=f"a string of at most {max_length} characters",
        )
    control = _CONTROL.search(value)
    if control is not None:
        raise InvalidRequest(
            f"{name} contains the control character U+{ord(control.group()):04X}",
            field=name,
            expected="a non-empty string without control characters",
        )
    return value


def _nul_error(name: str, expected: str) -> InvalidRequest:
    # No database stores U+0000 in a text column (PostgreSQL refuses it), and no
    # conversation needs it: refuse it up front, the same on every backend.
    return InvalidRequest(
        f"{name} contains a NUL character (U+0000)",
        field=name,
        expected=f"{expected} without NUL characters",
    )


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def output_body(
    *,
    user_id: str,
    session_id: str,
    text: str | None,
    data: dict[str, Any] | None,
    trace_id: str,
    disable_sensitive_logging: bool = False,
    source: str = "bot",
) -> bytes:
    """The exact JSON POSTed to the webhook for one output (the reference's response).

    The reference types ``AIOutput.text`` as a string, always: an output with data only
    (a notify with attachments, a flow's data-only say) carries ``""``, never null, so a
    receiver that reads the text as a string never meets another type."""
    body = orjson.dumps(
        {
            "userId": user_id,
            "sessionId": session_id,
            "AIOutput": {
                "text": "" if text is None else text,
                "data": data if data is not None else {},
                "traceId": trace_id,
                "disableSensitiveLogging": disable_sensitive_logging,
                "source": source,
            },
        }
    )
    # orjson's bytes keep the capacity its buffer grew to, several times the length for
    # a large document (about 1 MiB for a 100 KiB one). An output may stay in memory for
    # as long as its receiver fails: hold a copy of the exact size.
    return bytes(memoryview(body)) if len(body) > _COMPACT_FROM else body
