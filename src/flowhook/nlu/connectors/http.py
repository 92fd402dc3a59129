"""One JSON call to an external service (NLU server, translation API), failing cleanly.

Every failure becomes an ``ExternalServiceError`` whose message is safe to log: it
names what went wrong (timeout, status, bad reply) but never the URL (a query
string may carry an API key), the request, or the reply's body.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson

from flowhook.outbound_http import guard_refusal

# An API answer, not a download: bigger replies fail the call.
MAX_REPLY_BYTES = 1024 * 1024


class ExternalServiceError(Exception):
    """An external call failed; the message is safe to log (no URL, key or text)."""


async def post_json(
    http: aiohttp.ClientSession,
    url: str,
    body: Any,
    *,
    timeout: float,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
) -> Any:
    """POST ``body`` as JSON and return the decoded JSON reply (2xx only)."""
    sent = {"Content-Type": "application/json", "Accept": "application/json", **(headers or {})}
    try:
        async with (
            asyncio.timeout(timeout),
            http.post(
                url,
                data=orjson.dumps(body),
                headers=sent,
                params=dict(params) if params else None,
                allow_redirects=False,
            ) as resp,
        ):
            status = resp.status
            raw = await resp.content.read(MAX_REPLY_BYTES + 1)
    except TimeoutError:
        raise ExternalServiceError(f"no answer within {timeout:g}s") from None
    except aiohttp.ClientError as exc:
        refused = guard_refusal(exc)
        if refused is not None:
            raise ExternalServiceError(refused) from None
        raise ExternalServiceError(f"connection failed ({type(exc).__name__})") from None
    if not 200 <= status < 300:
        raise ExternalServiceError(f"answered HTTP {status}")
    if len(raw) > MAX_REPLY_BYTES:
        raise ExternalServiceError("reply larger than 1 MiB")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ExternalServiceError("reply is not JSON") from None


def at_path(document: Any, path: str) -> Any:
    """The value at a dotted ``path`` (``a.b.0.c``; digits index lists); None when absent."""
    current = document
    for part in path.split("."):
        if isinstance(current, Mapping):
            current = current.get(part)
        elif isinstance(current, list) and part.lstrip("-").isdigit():
            index = int(part)
            current = current[index] if -len(current) <= index < len(current) else None
        else:
            return None
        if current is None:
            return None
    return current
