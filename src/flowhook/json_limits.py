"""What the ingress refuses in a JSON body because flowhook could not write it back.

orjson reads documents nested up to 1024 levels but writes only up to about 254, and it
reads integers beyond 64 bits as (rounded) floats: a message accepted with such a value
would crash its turn, or be changed silently. So the ingress refuses, with a 400 that
names the field: nesting deeper than a limit (``FLOWHOOK_MAX_JSON_DEPTH``, far below
the writer's), integers outside the 64-bit range, and NaN or infinite numbers.

The common case costs almost nothing: the depth walk is skipped when the body has fewer
brackets than the limit, and numbers are looked at again only when the body holds a run
of 19 digits (or orjson refused it, as it does NaN and infinities).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from flowhook.errors import InvalidRequest

DEFAULT_MAX_DEPTH = 64
# Integers orjson writes exactly (i64 and u64).
INT_MIN = -(2**63)
INT_MAX = 2**64 - 1
# i64 and u64 bounds have 19 and 20 digits. The run is looked for in the body mapped to
# "1" for a digit and "0" for anything else: a substring search over that costs about a
# tenth of the regex ``\d{19}``, which tries every position (1.5 ms for a 100 KiB text).
_DIGIT_MAP = bytes(0x31 if 0x30 <= i <= 0x39 else 0x30 for i in range(256))
_LONG_RUN = b"1" * 19
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')
_PATH_LIMIT = 120  # characters of a path shown in a message


class _Unrepresentable:
    """Stands in for a number the writer cannot represent, found by the slow parse."""

    def __init__(self, text: str) -> None:
        self.text = text


def check_document(raw: bytes, doc: Any, max_depth: int) -> None:
    """Raise InvalidRequest if the parsed ``doc`` (from ``raw``) is nested too deep or
    holds an integer orjson read as a rounded float."""
    if raw.count(b"[") + raw.count(b"{") > max_depth:
        path = _too_deep(doc, max_depth)
        if path is not None:
            raise _depth_error(path, max_depth)
    if _LONG_RUN in raw.translate(_DIGIT_MAP):
        _check_numbers(raw)


def refused_by_orjson(raw: bytes, message: str, max_depth: int) -> InvalidRequest | None:
    """The precise 400 for a body orjson refused, when the reason is one of ours (too
    deep, NaN, infinity, a huge integer); None when it is simply not valid JSON."""
    if "depth" in message or "ecursion" in message:
        return _depth_error(_deep_path_in_raw(raw, max_depth), max_depth)
    try:
        _check_numbers(raw)
    except InvalidRequest as exc:
        return exc
    return None


def _check_numbers(raw: bytes) -> None:
    try:
        doc = json.loads(
            raw,
            parse_constant=_Unrepresentable,
            parse_int=_int,
            parse_float=_float,
        )
    except (ValueError, RecursionError):
        return  # not JSON at all: orjson's message says where
    path = _find(doc, lambda v: isinstance(v, _Unrepresentable))
    if path is not None:
        value = _get(doc, path)
        raise InvalidRequest(
            f"{_show(path)} is {value.text}, a number that cannot be stored as JSON",
            field=_field(path),
            expected=f"finite numbers; integers from {INT_MIN} to {INT_MAX}",
        )


def _int(text: str) -> int | _Unrepresentable:
    value = int(text)
    return value if INT_MIN <= value <= INT_MAX else _Unrepresentable(text[:40])


def _float(text: str) -> float | _Unrepresentable:
    value = float(text)
    return value if math.isfinite(value) else _Unrepresentable(text[:40])


def _too_deep(doc: Any, max_depth: int) -> list[str | int] | None:
    """The path to the first container nested deeper than ``max_depth``, if any (the
    body is level 1: a container at path length L is at level L + 1). One pass over the
    containers only; the path is looked for only when there is one to report."""
    stack: list[tuple[Any, int]] = [(doc, 0)]
    while stack:
        value, depth = stack.pop()
        if depth >= max_depth:
            return _first(doc, lambda v, d: d >= max_depth and isinstance(v, dict | list))
        below = depth + 1
        for child in value.values() if isinstance(value, dict) else value:
            if type(child) is dict or type(child) is list:
                stack.append((child, below))
    return None


def _find(doc: Any, wanted: Any) -> list[str | int] | None:
    return _first(doc, lambda value, _depth: wanted(value))


def _first(doc: Any, hit: Any) -> list[str | int] | None:
    """The path to the first value (depth first) for which ``hit(value, depth)`` holds.
    Paths are kept as parent links, built only for the value found: a large body costs
    one pass, not a copy of its path per value."""
    links: list[tuple[int, str | int]] = []  # per visited value: (parent's link, key)
    stack: list[tuple[Any, int, int]] = [(doc, 0, -1)]
    while stack:
        value, depth, link = stack.pop()
        if hit(value, depth):
            path: list[str | int] = []
            while link >= 0:
                link, key = links[link]
                path.append(key)
            return path[::-1]
        children: Any
        if isinstance(value, dict):
            children = value.items()
        elif isinstance(value, list):
            children = enumerate(value)
        else:
            continue
        for key, child in children:
            links.append((link, key))
            stack.append((child, depth + 1, len(links) - 1))
    return None


def _get(doc: Any, path: list[str | int]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def _deep_path_in_raw(raw: bytes, max_depth: int) -> list[str | int]:
    """The top-level key under which ``raw`` nests deeper than the limit, read from the
    bytes (orjson refused the body, so there is no parsed document)."""
    depth = 0
    key: str | None = None
    last_string: bytes | None = None
    for match in _TOKENS.finditer(raw):
        token = match.group()
        if token[:1] == b'"':
            last_string = token
            continue
        if token in (b"{", b"["):
            if depth == 1 and last_string is not None:
                key = _decode_key(last_string)
            depth += 1
            if depth > max_depth:
                break
        else:
            depth -= 1
        last_string = None
    return [] if key is None else [key]


def _decode_key(token: bytes) -> str:
    try:
        return str(json.loads(token))
    except ValueError:
        return token[1:-1].decode("utf-8", "replace")


def _depth_error(path: list[str | int], max_depth: int) -> InvalidRequest:
    where = _show(path) if path else "the request body"
    return InvalidRequest(
        f"{where} is nested more than {max_depth} levels deep",
        field=_field(path),
        expected=f"JSON nested at most {max_depth} levels deep",
    )


def _field(path: list[str | int]) -> str | None:
    return str(path[0]) if path else None


def _show(path: list[str | int]) -> str:
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    return text if len(text) <= _PATH_LIMIT else text[:_PATH_LIMIT] + "…"
