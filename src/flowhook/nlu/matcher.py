"""Intent matching: TF-IDF vectors over words and character trigrams, nearest example wins.

Built once per flow. Each example sentence becomes an L2-normalised TF-IDF
vector; an inverted index maps every feature to the examples holding it, so
matching touches only the examples that share a feature with the input. The
input's score for an intent is the cosine similarity to that intent's closest
example (1.0 for an example written exactly, ignoring case and punctuation).
Features the examples never use still count in the input's norm, so an input
full of unrelated words scores low.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flowhook.nlu.slots import SlotSpec, extract_slots
from flowhook.nlu.text import features, normalise

DEFAULT_THRESHOLD = 0.35
# Words carry more meaning than single trigrams.
_WORD_WEIGHT = 2.0


@dataclass(frozen=True, slots=True)
class Intent:
    name: str
    examples: Sequence[str]
    slots: Sequence[SlotSpec] = ()


@dataclass(frozen=True, slots=True)
class NluResult:
    """``intent`` is None when no intent scores at least the threshold; ``score`` is
    still the best score, which helps tuning examples and threshold."""

    intent: str | None
    score: float
    slots: dict[str, str] = field(default_factory=dict)

    def as_input(self) -> dict[str, Any]:
        """The ``input.intent`` / ``input.intentScore`` / ``input.slots`` values."""
        return {"intent": self.intent, "intentScore": self.score, "slots": self.slots}


class IntentModel:
    """Matches texts against intents' example sentences; immutable after construction."""

    __slots__ = (
        "_exact",
        "_example_intent",
        "_idf",
        "_index",
        "_intent_slots",
        "_ranges",
        "_slots",
        "_unknown_idf",
        "intents",
        "threshold",
    )

    def __init__(
        self,
        intents: Sequence[Intent],
        *,
        slots: Sequence[SlotSpec] = (),
        threshold: float = DEFAULT_THRESHOLD,
    ) -> None:
        self.intents = tuple(intents)
        self.threshold = threshold
        self._slots = tuple(slots)
        self._intent_slots: Mapping[str, tuple[SlotSpec, ...]] = {
            intent.name: tuple(intent.slots) for intent in self.intents
        }
        documents: list[tuple[int, dict[str, int]]] = []
        self._exact: dict[str, int] = {}
        for number, intent in enumerate(self.intents):
            for sentence in intent.examples:
                text = normalise(sentence)
                if text:
                    self._exact.setdefault(text, number)
                    documents.append((number, features(text)))
        document_frequency: dict[str, int] = {}
        for _, counts in documents:
            for feature in counts:
                document_frequency[feature] = document_frequency.get(feature, 0) + 1
        total = len(documents)
        self._idf = {
            feature: math.log((1 + total) / (1 + frequency)) + 1.0
            for feature, frequency in document_frequency.items()
        }
        self._unknown_idf = math.log(1 + total) + 1.0
        self._example_intent = [number for number, _ in documents]
        index: dict[str, list[tuple[int, float]]] = {}
        for example, (_, counts) in enumerate(documents):
            vector = self._vector(counts)
            for feature, weight in vector.items():
                index.setdefault(feature, []).append((example, weight))
        self._index = {
            feature: (tuple(e for e, _ in postings), tuple(w for _, w in postings))
            for feature, postings in index.items()
        }
        ranges = []
        for number, intent in enumerate(self.intents):
            owned = [i for i, owner in enumerate(self._example_intent) if owner == number]
            ranges.append((intent.name, owned[0], owned[-1] + 1) if owned else (intent.name, 0, 0))
        self._ranges = tuple(ranges)

    def _vector(self, counts: Mapping[str, int]) -> dict[str, float]:
        idf = self._idf
        unknown = self._unknown_idf
        vector: dict[str, float] = {}
        for feature, count in counts.items():
            weight = (1.0 + math.log(count)) * idf.get(feature, unknown)
            vector[feature] = weight * _WORD_WEIGHT if feature[0] == "w" else weight
        norm = math.sqrt(sum(weight * weight for weight in vector.values())) or 1.0
        return {feature: weight / norm for feature, weight in vector.items()}

    def scores(self, text: str) -> dict[str, float]:
        """Every intent's score for ``text`` (0.0 for intents sharing nothing with it)."""
        normalised = normalise(text)
        result = dict.fromkeys((intent.name for intent in self.intents), 0.0)
        if not normalised:
            return result
        exact = self._exact.get(normalised)
        if exact is not None:
            result[self.intents[exact].name] = 1.0
        index = self._index
        sums = [0.0] * len(self._example_intent)
        for feature, weight in self._vector(features(normalised)).items():
            postings = index.get(feature)
            if postings is None:
                continue
            examples, weights = postings
            for example, example_weight in zip(examples, weights, strict=True):
                sums[example] += weight * example_weight
        # Examples are numbered intent by intent: each intent owns one slice.
        for name, start, end in self._ranges:
            if end > start:
                best = max(sums[start:end])
                if best > result[name]:
                    result[name] = min(best, 1.0)
        return result

    def match(self, text: str) -> dict[str, Any]:
        """``{"intent", "intentScore", "slots"}`` for ``text``, as templates see them."""
        return self.result(text).as_input()

    def result(self, text: str) -> NluResult:
        best_name: str | None = None
        best_score = 0.0
        if self.intents:
            for name, score in self.scores(text).items():
                if score > best_score:
                    best_name, best_score = name, score
        intent = best_name if best_score >= self.threshold else None
        slots = extract_slots(self._slots, text) if self._slots else {}
        if intent is not None and self._intent_slots[intent]:
            slots.update(extract_slots(self._intent_slots[intent], text))
        return NluResult(intent, round(best_score, 4), slots)
