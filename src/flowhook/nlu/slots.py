"""Slots: values picked out of the input by a regular expression or a list of values."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SlotSpec:
    """One slot. Exactly one of ``pattern`` and ``values`` is set.

    ``pattern``: the first match; its group ``value`` when it has one, else its
    first group, else the whole match. ``values``: a canonical value per
    spelling (synonyms included); matched as whole words, ignoring case, and the
    canonical value is the slot's value.
    """

    name: str
    pattern: re.Pattern[str] | None = None
    values: Mapping[str, str] | None = None
    _values_pattern: re.Pattern[str] | None = None

    @classmethod
    def from_pattern(cls, name: str, pattern: str) -> SlotSpec:
        """Raises ``re.error`` for a bad expression."""
        return cls(name, pattern=re.compile(pattern))

    @classmethod
    def from_values(
        cls, name: str, values: Sequence[str] | Mapping[str, Sequence[str]]
    ) -> SlotSpec:
        """``values``: a list of values, or a mapping of value -> synonyms."""
        spellings: dict[str, str] = {}
        if isinstance(values, Mapping):
            for canonical, synonyms in values.items():
                for spelling in (canonical, *synonyms):
                    spellings.setdefault(spelling.casefold(), canonical)
        else:
            for value in values:
                spellings.setdefault(value.casefold(), value)
        alternatives = sorted(spellings, key=len, reverse=True)  # longest first
        joined = "|".join(re.escape(spelling) for spelling in alternatives if spelling)
        pattern = re.compile(rf"(?<!\w)(?:{joined})(?!\w)", re.IGNORECASE) if joined else None
        return cls(name, values=spellings, _values_pattern=pattern)

    def extract(self, text: str) -> str | None:
        if self.pattern is not None:
            match = self.pattern.search(text)
            if match is None:
                return None
            if "value" in self.pattern.groupindex:
                return match.group("value")
            return match.group(1) if self.pattern.groups else match.group(0)
        if self._values_pattern is None or self.values is None:
            return None
        match = self._values_pattern.search(text)
        return None if match is None else self.values.get(match.group(0).casefold())


def extract_slots(specs: Sequence[SlotSpec], text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for spec in specs:
        value = spec.extract(text)
        if value is not None:
            found[spec.name] = value
    return found
