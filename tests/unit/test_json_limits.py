"""The ingress refuses JSON flowhook could not write back, naming the field."""

from __future__ import annotations

import orjson
import pytest

from flowhook.errors import InvalidRequest
from flowhook.wire import InboundLimits, parse_inbound


def body(data: bytes, **ids: str) -> bytes:
    user = ids.get("user", "u").encode()
    session = ids.get("session", "s").encode()
    return (
        b'{"userId":"' + user + b'","sessionId":"' + session + b'","text":"t","data":' + data + b"}"
    )


def nested(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


@pytest.mark.parametrize(
    ("raw", "field", "in_message"),
    [
        (body(b'{"v": NaN}'), "data", "data.v is NaN"),
        (body(b'{"v": [1, -Infinity]}'), "data", "data.v[1] is -Infinity"),
        (body(b'{"v": 1e400}'), "data", "data.v is 1e400"),
        (body(b'{"v": 18446744073709551616}'), "data", "a number that cannot be stored"),
        (body(b'{"v": -9223372036854775809}'), "data", "a number that cannot be stored"),
        (body(b'{"x": ' + nested(63) + b"}"), "data", "nested more than 64 levels"),
        (body(b'{"x": ' + nested(300) + b"}"), "data", "nested more than 64 levels"),
        (body(b'{"x": ' + nested(2000) + b"}"), "data", "nested more than 64 levels"),
        (body(b"{}", user="a\\u0007b"), "userId", "control character U+0007"),
        (body(b"{}", session="s\\u009b"), "sessionId", "control character U+009B"),
        (body(b"{}", session="a\\r\\nb"), "sessionId", "control character U+000D"),
    ],
)
def test_unwritable_input_is_refused_naming_the_field(
    raw: bytes, field: str, in_message: str
) -> None:
    """Each refusal is a 400 (InvalidRequest) naming the top-level field and the path."""
    with pytest.raises(InvalidRequest) as info:
        parse_inbound(raw)
    assert info.value.field == field
    assert in_message in info.value.message
    assert info.value.expected


@pytest.mark.parametrize(
    "data",
    [
        b'{"x": ' + nested(62) + b"}",  # the body, data, x: 62 more levels = 64 in all
        b'{"v": 18446744073709551615, "w": -9223372036854775808, "f": 1.5e300}',
        b'{"s": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}',
        b'{"digits": "123456789012345678901234567890", "n": 0.12345678901234567890123}',
    ],
)
def test_what_is_accepted_can_be_written_back(data: bytes) -> None:
    """At the limits (depth 64, 64-bit integers, brackets inside strings, long digit runs
    in strings) the body is accepted, and orjson writes its data back."""
    parsed = parse_inbound(body(data))
    assert parsed.data is not None
    orjson.dumps({"AIOutput": {"data": parsed.data}})


def test_the_depth_limit_is_configurable() -> None:
    """A lower limit refuses what the default accepts."""
    raw = body(b'{"x": ' + nested(10) + b"}")
    parse_inbound(raw)
    with pytest.raises(InvalidRequest):
        parse_inbound(raw, InboundLimits(max_depth=8))


def test_ids_over_the_length_limit_are_refused() -> None:
    """The id length limit is configurable and names the field."""
    with pytest.raises(InvalidRequest) as info:
        parse_inbound(body(b"{}", session="s" * 21), InboundLimits(max_id_length=20))
    assert info.value.field == "sessionId"
