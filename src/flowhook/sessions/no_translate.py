"""No-translation markers: text between two markers (default ``**``) passes a
translation unchanged, and the markers themselves never reach the reader.

``Please enter **ABC-123** now`` is split into pieces to translate (``Please enter``,
``now``) and pieces to keep (``ABC-123``); the whitespace around each piece is kept
as written, so only the words go to the provider. A marker without its partner is
ordinary text.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Piece:
    text: str
    translate: bool


def split(text: str, marker: str) -> list[Piece]:
    """``text`` as pieces, in order; marked pieces without their markers."""
    pieces: list[Piece] = []
    pos = 0
    while True:
        start = text.find(marker, pos)
        end = -1 if start < 0 else text.find(marker, start + len(marker))
        if end < 0:
            pieces.append(Piece(text[pos:], True))
            break
        pieces.append(Piece(text[pos:start], True))
        pieces.append(Piece(text[start + len(marker) : end], False))
        pos = end + len(marker)
    return [p for p in pieces if p.text]


def strip_markers(text: str, marker: str) -> str:
    """``text`` with its (paired) markers removed, nothing translated."""
    return "".join(p.text for p in split(text, marker))


def core(text: str) -> tuple[str, str, str]:
    """(leading whitespace, the words, trailing whitespace)."""
    stripped = text.strip()
    if not stripped:
        return text, "", ""
    lead = text[: len(text) - len(text.lstrip())]
    trail = text[len(text.rstrip()) :]
    return lead, stripped, trail
