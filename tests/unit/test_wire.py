"""The wire format: what the ingress accepts, what it refuses, and the delivered body."""

from __future__ import annotations

import tracemalloc

import orjson
import pytest

from flowhook.errors import InvalidRequest
from flowhook.wire import MAX_ID_LENGTH, new_trace_id, output_body, parse_inbound


def test_reference_body_parses() -> None:
    """The reference's example body yields its four fields unchanged."""
    body = parse_inbound(
        b'{"userId": "user123", "sessionId": "session123", '
        b'"text": "Hello, I need help with my order", "data": {"exampleKey": "exampleValue"}}'
    )
    assert (body.user_id, body.session_id, body.text, body.data) == (
        "user123",
        "session123",
        "Hello, I need help with my order",
        {"exampleKey": "exampleValue"},
    )


def test_unknown_fields_are_ignored_and_null_means_absent() -> None:
    """Extra fields do not break clients; a null text or data counts as not given."""
    body = parse_inbound(b'{"userId": "u", "sessionId": "s", "text": null, "data": {}, "x": 1}')
    assert (body.text, body.data) == (None, {})


@pytest.mark.parametrize(
    ("raw", "field", "message"),
    [
        (
            b'{"userId": "' + b"u" * (MAX_ID_LENGTH + 1) + b'", "sessionId": "s", "text": "t"}',
            "userId",
            f"userId is {MAX_ID_LENGTH + 1} characters long",
        ),
        (b'{"userId": "u", "sessionId": true, "text": "t"}', "sessionId", "sessionId is a boolean"),
        (b'{"userId": "u", "sessionId": "s", "text": ["t"]}', "text", "text is a array"),
        (
            b'{"userId": "u", "sessionId": "s", "text": ""}',
            "text",
            "the message has neither text nor data",
        ),
        (
            b'{"userId": "u", "sessionId": "s", "data": null}',
            "text",
            "the message has neither text nor data",
        ),
    ],
)
def test_refusals_name_the_field(raw: bytes, field: str, message: str) -> None:
    """Each refusal carries the field and a message saying what was wrong."""
    with pytest.raises(InvalidRequest) as info:
        parse_inbound(raw)
    assert info.value.field == field
    assert info.value.message == message


@pytest.mark.parametrize(
    "raw",
    [b'{"t": "\\ud800"}', b"[" * 2000 + b"]" * 2000, b'{"a": 1e999}', b"\x00", b"   "],
)
def test_undecodable_json_is_invalid_request(raw: bytes) -> None:
    """Lone surrogates, excessive nesting, infinities and junk are refused, not crashed on."""
    with pytest.raises(InvalidRequest):
        parse_inbound(raw)


def test_output_body_is_the_reference_shape() -> None:
    """The delivered body has exactly the reference's keys, with data defaulting to {}."""
    body = orjson.loads(
        output_body(user_id="u", session_id="s", text="hi", data=None, trace_id="t")
    )
    assert body == {
        "userId": "u",
        "sessionId": "s",
        "AIOutput": {
            "text": "hi",
            "data": {},
            "traceId": "t",
            "disableSensitiveLogging": False,
            "source": "bot",
        },
    }


def test_trace_ids_follow_the_reference_format_and_are_unique() -> None:
    """Trace ids look like the reference's and never repeat."""
    ids = {new_trace_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(i.startswith("endpoint-httpIncomingMessage-") and len(i) == 65 for i in ids)


@pytest.mark.parametrize("field", ["userId", "sessionId", "text"])
def test_nul_characters_are_refused_in_stored_strings(field: str) -> None:
    """U+0000 in userId, sessionId or text is a 400 naming the field, on every backend alike."""
    doc = {"userId": "u", "sessionId": "s", "text": "t"}
    doc[field] = "a\u0000b"
    with pytest.raises(InvalidRequest) as info:
        parse_inbound(orjson.dumps(doc))
    assert info.value.field == field
    assert "NUL" in info.value.message


def test_nul_characters_inside_data_are_kept() -> None:
    """Inside data, U+0000 is fine: data is stored as escaped JSON."""
    body = parse_inbound(orjson.dumps({"userId": "u", "sessionId": "s", "data": {"k": "a\u0000"}}))
    assert body.data == {"k": "a\u0000"}


def test_a_large_output_body_holds_no_more_memory_than_its_length() -> None:
    """A 100 KiB output body costs about 100 KiB while it is held (its receiver may fail
    for hours), not the capacity orjson's buffer grew to (about 1 MiB)."""
    text = "x" * 100 * 1024
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        body = output_body(user_id="u", session_id="s", text=text, data=None, trace_id="t")
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert orjson.loads(body)["AIOutput"]["text"] == text
    assert held < 1.5 * len(body), (held, len(body))
