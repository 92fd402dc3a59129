"""Trace and delivery ids made from random bytes (flowhook.ids)."""

from __future__ import annotations

import uuid

from flowhook.ids import uuid4_hex, uuid4_text


def test_ids_are_version_4_uuids_in_uuid_texts() -> None:
    """Each id parses as a version 4, RFC 4122 UUID whose own text is the id (8-4-4-4-12
    and plain hex), and no two of many are equal."""
    texts = {uuid4_text() for _ in range(2000)}
    hexes = {uuid4_hex() for _ in range(2000)}
    assert len(texts) == len(hexes) == 2000
    for text in texts:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)
    for h in hexes:
        parsed = uuid.UUID(hex=h)
        assert (parsed.version, parsed.variant, parsed.hex) == (4, uuid.RFC_4122, h)
