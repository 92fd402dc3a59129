"""The frames between the server and a code worker: a 4-byte length, then JSON.

Requests: ``{"path"|"module", "function", "args"}``. Answers: ``{"ok": result}`` or
``{"error": "Type: message"}``. JSON both ways, never pickle: an answer is data.
"""

from __future__ import annotations

import struct
from typing import Any

import orjson

HEADER = struct.Struct(">I")
# An answer (or request) bigger than this is refused: a function's result is data for
# one turn, not a download.
MAX_FRAME_BYTES = 16 * 1024 * 1024


def encode(message: Any) -> bytes:
    body = orjson.dumps(message, option=orjson.OPT_NON_STR_KEYS)
    if len(body) > MAX_FRAME_BYTES:
        raise ValueError(f"message of {len(body)} bytes is over {MAX_FRAME_BYTES}")
    return HEADER.pack(len(body)) + body


def frame_length(buffer: bytes | bytearray) -> int | None:
    """The body length announced at the start of ``buffer`` (None: header incomplete)."""
    if len(buffer) < HEADER.size:
        return None
    (length,) = HEADER.unpack_from(buffer)
    if length > MAX_FRAME_BYTES:
        raise ValueError(f"frame of {length} bytes is over {MAX_FRAME_BYTES}")
    return int(length)
