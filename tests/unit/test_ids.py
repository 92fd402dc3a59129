"""Trace ids (random) and delivery ids (time-ordered) made from bytes (flowhook.ids)."""

from __future__ import annotations

import time
import uuid

from flowhook.ids import uuid4_hex, uuid4_text, uuid7_hex


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


def test_delivery_ids_are_version_7_uuids_that_sort_by_millisecond() -> None:
    """A version 7 id parses as an RFC 4122 UUID of version 7 whose first 48 bits are the
    millisecond it was made in; ids of a later millisecond sort after earlier ones; many
    made at once are all distinct."""
    before = time.time_ns() // 1_000_000
    made = [uuid7_hex() for _ in range(2000)]
    after = time.time_ns() // 1_000_000
    assert len(set(made)) == 2000
    for h in made:
        parsed = uuid.UUID(hex=h)
        assert (parsed.version, parsed.variant, parsed.hex) == (7, uuid.RFC_4122, h)
        assert before <= int(h[:12], 16) <= after
    first = uuid7_hex()
    time.sleep(0.002)
    assert uuid7_hex() > first
