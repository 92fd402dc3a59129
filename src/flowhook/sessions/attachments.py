"""Attachments of a notify message: files, images or links sent to the user with it.

A notify body may carry ``attachments: [{"name", "url", "type", "caption"}]``. They
are checked here (every problem a 400 naming the item and field) and delivered in
the output's data as ``data.attachments``, so the Webhook Endpoint's payload keeps
its shape: receivers that know attachments read them from ``AIOutput.data``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import orjson

from flowhook.errors import InvalidRequest

MAX_ATTACHMENTS = 20
MAX_URL = 2000
MAX_TEXT = 1000
FIELDS = ("name", "url", "type", "caption")


def split_attachments(body: bytes) -> tuple[bytes, list[dict[str, str]] | None]:
    """The notify body to validate as usual, and its checked attachments. A notify with
    attachments only (no text, no data) is complete: it gets an empty data object."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body, None  # the usual validation names the problem
    attachments = parse_attachments(doc)
    if attachments and doc.get("text") is None and doc.get("data") is None:
        body = orjson.dumps({**doc, "data": {}})
    return body, attachments


def parse_attachments(doc: Any) -> list[dict[str, str]] | None:
    """The checked ``attachments`` of a notify request body (None when it has none)."""
    if not isinstance(doc, dict) or doc.get("attachments") is None:
        return None
    items = doc["attachments"]
    if not isinstance(items, list):
        raise InvalidRequest(
            "attachments is not a list", field="attachments", expected="a list of objects"
        )
    if len(items) > MAX_ATTACHMENTS:
        raise InvalidRequest(
            f"attachments has {len(items)} items",
            field="attachments",
            expected=f"at most {MAX_ATTACHMENTS} attachments",
        )
    return [_attachment(item, f"attachments[{i}]") for i, item in enumerate(items)]


def _attachment(item: Any, where: str) -> dict[str, str]:
    if not isinstance(item, dict):
        raise InvalidRequest(f"{where} is not an object", field=where, expected="an object")
    unknown = sorted(str(k) for k in item if k not in FIELDS)
    if unknown:
        raise InvalidRequest(
            f"{where} has unknown fields: {', '.join(unknown)[:200]}",
            field=f"{where}.{unknown[0][:100]}",
            expected="only name, url, type and caption",
        )
    out: dict[str, str] = {}
    for name in FIELDS:
        value = item.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or "\x00" in value:
            raise InvalidRequest(
                f"{where}.{name} is not a string",
                field=f"{where}.{name}",
                expected="a string without NUL characters",
            )
        limit = MAX_URL if name == "url" else MAX_TEXT
        if len(value) > limit:
            raise InvalidRequest(
                f"{where}.{name} is {len(value)} characters long",
                field=f"{where}.{name}",
                expected=f"at most {limit} characters",
            )
        out[name] = value
    url = out.get("url")
    if url is None:
        raise InvalidRequest(f"{where}.url is missing", field=f"{where}.url", expected="a URL")
    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        valid = False
    if not valid:
        raise InvalidRequest(
            f"{where}.url is not an absolute http(s) URL",
            field=f"{where}.url",
            expected="an absolute http:// or https:// URL",
        )
    return out
