"""What every NLU connector does: text in, ``NluResult`` out (or ``ExternalServiceError``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from flowhook.nlu.matcher import NluResult


@dataclass(frozen=True, slots=True)
class NluQuery:
    """What a connector may send: the text plus who said it (for templates of bodies)."""

    text: str
    user_id: str = ""
    session_id: str = ""
    locale: str | None = None

    def variables(self) -> dict[str, str]:
        return {
            "text": self.text,
            "userId": self.user_id,
            "sessionId": self.session_id,
            "locale": self.locale or "",
        }


class NluConnector(Protocol):
    async def parse(self, http: aiohttp.ClientSession, query: NluQuery) -> NluResult:
        """The intent, score and slots for ``query``; raises ``ExternalServiceError``."""
        ...


def slot_value(value: Any) -> str | None:
    """Slots are strings (like the built-in matcher's); numbers and booleans are spelled
    out, anything else (objects, lists, null) is dropped."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return None


def slots_from(found: Any) -> dict[str, str]:
    """Slots from a mapping ``{name: value}`` or a list of entities ``[{"entity"|"name",
    "value"}]`` (the first value of a name wins)."""
    slots: dict[str, str] = {}
    if isinstance(found, Mapping):
        items = [(str(name), value) for name, value in found.items()]
    elif isinstance(found, list):
        items = []
        for entity in found:
            if isinstance(entity, Mapping):
                name = entity.get("entity", entity.get("name"))
                if isinstance(name, str):
                    items.append((name, entity.get("value")))
    else:
        return slots
    for name, raw in items:
        value = slot_value(raw)
        if value is not None and name not in slots:
            slots[name] = value
    return slots


def result_from(intent: Any, score: Any, slots: dict[str, str], min_score: float) -> NluResult:
    """An ``NluResult``; an intent without a numeric score counts as certain (1.0)."""
    name = intent if isinstance(intent, str) and intent else None
    if isinstance(score, int | float) and not isinstance(score, bool):
        value = min(max(float(score), 0.0), 1.0)
    else:
        value = 1.0 if name is not None else 0.0
    if name is not None and value < min_score:
        name = None
    return NluResult(name, round(value, 4), slots)
