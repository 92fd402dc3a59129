"""The provider interface and language codes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import aiohttp


@dataclass(frozen=True, slots=True)
class Translation:
    text: str
    # The source language the provider detected (lower case, e.g. "de"); None when
    # the caller named the source or the provider could not tell.
    detected: str | None = None


class Translator(Protocol):
    """One translation API. ``translate`` returns one ``Translation`` per text, in order,
    or raises ``ExternalServiceError`` (with a message safe to log)."""

    name: str

    async def translate(
        self,
        http: aiohttp.ClientSession,
        texts: Sequence[str],
        target: str,
        source: str | None = None,
    ) -> list[Translation]: ...


def normalise_language(code: str) -> str:
    """``de_DE`` / ``DE-de`` -> ``de-de``."""
    return code.strip().replace("_", "-").lower()


def primary(code: str) -> str:
    """The language without its region: ``en-US`` -> ``en``."""
    return normalise_language(code).split("-", 1)[0]


def same_language(a: str, b: str) -> bool:
    return primary(a) == primary(b)
