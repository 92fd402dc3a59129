"""What ``http`` and ``llm`` share: field readers, reading a JSON reply, error branches."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson

from flowhook.flows.errors import FlowRuntimeError
from flowhook.flows.fields import FieldReader
from flowhook.flows.resources import MAX_RESPONSE_BYTES
from flowhook.flows.run import TurnRun


class CallFailed(Exception):
    """An HTTP call that did not give a usable answer; ``status`` None: no response."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def read_seconds(fields: FieldReader, field: str) -> float | None:
    value = fields.raw(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 600:
        fields.problem(f"'{field}' must be a number of seconds, more than 0 and at most 600", field)
        return None
    return float(value)


async def read_body(response: aiohttp.ClientResponse) -> tuple[Any, bytes]:
    """The reply as JSON when it is JSON (else its text), plus the raw bytes."""
    raw = await response.content.read(MAX_RESPONSE_BYTES + 1)
    if len(raw) > MAX_RESPONSE_BYTES:
        raise CallFailed(f"the reply is larger than {MAX_RESPONSE_BYTES} bytes", response.status)
    if not raw:
        return None, raw
    try:
        return orjson.loads(raw), raw
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", "replace"), raw


def fail_or_branch(
    run: TurnRun, error_id: str | None, key: str, what: str, failure: CallFailed
) -> str | None:
    """Go to the ``error`` branch with ``context[key]`` describing the failure, or fail."""
    if error_id is None:
        raise FlowRuntimeError(f"{what} failed: {failure.message}")
    run.context[key] = {"status": failure.status, "message": failure.message}
    return error_id
