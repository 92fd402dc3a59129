"""Random (version 4) UUIDs as text, without building ``uuid.UUID`` objects.

Every message gets a trace id and every output a delivery id. ``uuid.uuid4()`` builds a
``UUID`` (an int from 16 random bytes, then formatted back) for each: about 4 µs against
under 2 µs for the same text made from the bytes directly (timeit). Same randomness
(``os.urandom``), same version and variant bits, same text.
"""

from __future__ import annotations

import os

_urandom = os.urandom


def uuid4_hex() -> str:
    """32 lowercase hex digits, as ``uuid.uuid4().hex``."""
    raw = bytearray(_urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return raw.hex()


def uuid4_text() -> str:
    """The 8-4-4-4-12 form, as ``str(uuid.uuid4())``."""
    h = uuid4_hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
