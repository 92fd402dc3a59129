"""Error messages are written for people: where JSON breaks, which byte is not UTF-8,
no pydantic prefixes, camelCase keys, every problem as {field?, message}."""

from __future__ import annotations

import pytest

from flowhook import errors as e
from flowhook.http.errors import error_body, validation_body
from flowhook.http.routing import check_json_body
from flowhook.wire import parse_inbound


def test_admin_json_syntax_errors_name_line_and_column() -> None:
    """A JSON syntax error says what is wrong, at which line and column."""
    with pytest.raises(e.InvalidRequest) as caught:
        check_json_body(b'{\n  "a": 1,\n  "b": }', "application/json")
    assert caught.value.message == (
        "the body is not valid JSON: Expecting value at line 3, column 8"
    )
    assert caught.value.field == "body"


@pytest.mark.parametrize("raw", [b'{"name": "caf\xe9"}', b"\xff"])
def test_invalid_utf8_is_named_with_its_byte(raw: bytes) -> None:
    """Bytes that are not UTF-8 are reported as such, admin API and ingress alike."""
    with pytest.raises(e.InvalidRequest, match="not valid UTF-8: byte 0x"):
        check_json_body(raw, None)
    with pytest.raises(e.InvalidRequest, match="not valid UTF-8: byte 0x"):
        parse_inbound(raw)


def test_a_form_body_is_unsupported_media_type() -> None:
    """A body sent as a form is refused as such (415), naming the expected type."""
    with pytest.raises(e.UnsupportedMediaType) as caught:
        check_json_body(b"a=1", "application/x-www-form-urlencoded; charset=utf-8")
    assert caught.value.details["expected"] == "application/json"
    check_json_body(b"{}", "application/merge-patch+json")  # any +json type is JSON


def test_validation_problems_lose_pydantic_prefixes() -> None:
    """ "Value error, " never reaches a client; missing and unknown fields say so plainly."""
    body = validation_body(
        [
            {"type": "value_error", "loc": ("body", "webhookUrl"), "msg": "Value error, bad"},
            {"type": "missing", "loc": ("body", "name"), "msg": "Field required"},
            {"type": "extra_forbidden", "loc": ("body", "x"), "msg": "Extra inputs"},
        ]
    )
    assert body["error"]["message"] == "webhookUrl: bad"
    assert body["error"]["problems"] == [
        {"field": "webhookUrl", "message": "bad"},
        {"field": "name", "message": "is required"},
        {"field": "x", "message": "is not a known field"},
    ]


def test_error_details_are_camel_case_and_problems_are_objects() -> None:
    """Details of the error tree come out camelCase; string problems become
    {"message"} objects, the one schema."""
    limited = error_body(e.RateLimited("slow down", retry_after=2))
    assert limited == {"error": {"code": "rate_limited", "message": "slow down", "retryAfter": 2}}
    invalid = error_body(e.Unprocessable("bad snapshot", problems=["a", "b"]))
    assert invalid["error"]["problems"] == [{"message": "a"}, {"message": "b"}]
