"""Answer types of the ``question`` node: how a user's text becomes a typed value.

Each type is a small class registered by name in ``ANSWER_TYPES``. ``parse``
gets the input text and returns an ``Answer`` (valid) or ``None`` (not
understood: the question reprompts). Types that find a value inside a sentence
(``number``, ``email``) accept it only when the text holds exactly one.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

from flowhook.flows.fields import FieldReader


@dataclass(frozen=True, slots=True)
class Answer:
    """A valid answer; ``value`` is what the question stores in the context."""

    value: Any


class AnswerType(ABC):
    name: ClassVar[str]

    @classmethod
    def from_fields(cls, fields: FieldReader) -> AnswerType:
        """Read the type's own options (``pattern``, ``choices``) from the question node."""
        return cls()

    @abstractmethod
    def parse(self, text: str) -> Answer | None: ...


class TextAnswer(AnswerType):
    """Any non-blank text, without surrounding whitespace."""

    name = "text"

    def parse(self, text: str) -> Answer | None:
        stripped = text.strip()
        return Answer(stripped) if stripped else None


# A number standing on its own: not part of a word ("A123") or of a longer number.
_NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?!\w)(?!\.\d)")


class NumberAnswer(AnswerType):
    """Exactly one number in the text ("12345", "it's #12345."): an int, or a float with a dot."""

    name = "number"

    def parse(self, text: str) -> Answer | None:
        found = _NUMBER.findall(text)
        if len(found) != 1:
            return None
        number = found[0]
        return Answer(float(number) if "." in number else int(number))


_YES_WORDS = frozenset(
    {"yes", "y", "yeah", "yep", "yup", "sure", "ok", "okay", "correct", "right"}
    | {"absolutely", "definitely", "certainly", "affirmative", "true"}
)
_NO_WORDS = frozenset({"no", "n", "nope", "nah", "never", "false", "negative"})
_YES_PHRASES = ("of course", "go ahead", "please do")
_NO_PHRASES = ("not really", "don't", "dont", "do not", "please don't")


class YesNoAnswer(AnswerType):
    """English yes/no: decided by the first word ("Yes please" -> True, "nope" -> False)."""

    name = "yes_no"

    def parse(self, text: str) -> Answer | None:
        words = re.findall(r"[a-z']+", text.lower().replace("\u2019", "'"))
        if not words:
            return None
        phrase = " ".join(words)
        for phrases, value in ((_NO_PHRASES, False), (_YES_PHRASES, True)):
            if any(phrase == p or phrase.startswith(p + " ") for p in phrases):
                return Answer(value)
        if words[0] in _YES_WORDS:
            return Answer(True)
        if words[0] in _NO_WORDS:
            return Answer(False)
        return None


_EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+"
)


class EmailAnswer(AnswerType):
    """Exactly one e-mail address in the text, as written."""

    name = "email"

    def parse(self, text: str) -> Answer | None:
        found = set(_EMAIL.findall(text))
        return Answer(found.pop()) if len(found) == 1 else None


class RegexAnswer(AnswerType):
    """The first match of ``pattern`` (``re.search``; anchor it for whole-text answers)."""

    name = "regex"

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern

    @classmethod
    def from_fields(cls, fields: FieldReader) -> AnswerType:
        source = fields.string("pattern", required=True)
        pattern = re.compile("")
        if source is not None:
            try:
                pattern = re.compile(source)
            except re.error as exc:
                fields.problem(f"'pattern' is not a valid regular expression: {exc}", "pattern")
        return cls(pattern)

    def parse(self, text: str) -> Answer | None:
        match = self.pattern.search(text)
        return Answer(match.group(0)) if match else None


def _normalise_choice(text: str) -> str:
    return " ".join(text.casefold().split()).strip(".!?,;:'\" ")


class ChoiceAnswer(AnswerType):
    """One of ``choices``, ignoring case and punctuation, or its 1-based number."""

    name = "choice"

    def __init__(self, choices: list[str]) -> None:
        self.choices = choices
        self._by_text = {_normalise_choice(choice): choice for choice in choices}

    @classmethod
    def from_fields(cls, fields: FieldReader) -> AnswerType:
        choices = fields.string_list("choices", required=True)
        if choices is None:
            return cls([])
        if not choices:
            fields.problem("'choices' must not be empty", "choices")
        normalised = [_normalise_choice(choice) for choice in choices]
        if len(set(normalised)) != len(normalised):
            fields.problem("'choices' must differ in more than case and punctuation", "choices")
        return cls(choices)

    def parse(self, text: str) -> Answer | None:
        normalised = _normalise_choice(text)
        if normalised in self._by_text:
            return Answer(self._by_text[normalised])
        if normalised.isdigit() and 1 <= int(normalised) <= len(self.choices):
            return Answer(self.choices[int(normalised) - 1])
        return None


ANSWER_TYPES: Mapping[str, type[AnswerType]] = MappingProxyType(
    {
        answer_type.name: answer_type
        for answer_type in (
            TextAnswer,
            NumberAnswer,
            YesNoAnswer,
            EmailAnswer,
            RegexAnswer,
            ChoiceAnswer,
        )
    }
)
