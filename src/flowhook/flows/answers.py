"""Answer types of the ``question`` node: how a user's text becomes a typed value.

Each type is a small class registered by name in ``ANSWER_TYPES``. ``parse``
gets the input text and returns an ``Answer`` (valid) or ``None`` (not
understood: the question reprompts). Types that find a value inside a sentence
(``number``, ``email``) accept it only when the text holds exactly one.
"""

from __future__ import annotations

import datetime as dt
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

from flowhook.flows.fields import FieldReader
from flowhook.flows.run import TurnRun


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

    def parse_turn(self, text: str, run: TurnRun) -> Answer | None:
        """Parse with the turn at hand (its clock, locale, intent); default: ``parse``."""
        return self.parse(text)


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


_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_RELATIVE = {"today": 0, "tonight": 0, "now": 0, "tomorrow": 1, "yesterday": -1}
_ISO_DATE = re.compile(r"(?<!\d)(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?!\d)")
_NUMERIC_DATE = re.compile(r"(?<!\d)(\d{1,2})([./-])(\d{1,2})\2(\d{4}|\d{2})(?!\d)")
_MONTH_NAMES = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DAY_MONTH = re.compile(
    rf"(?<!\w)(\d{{1,2}})(?:st|nd|rd|th)?\.?\s+(?:of\s+)?({_MONTH_NAMES})\.?(?:,?\s+(\d{{4}}))?(?!\w)"
)
_MONTH_DAY = re.compile(
    rf"(?<!\w)({_MONTH_NAMES})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s+(\d{{4}}))?(?!\w)"
)


class DateAnswer(AnswerType):
    """A calendar date, stored as ISO text (``2024-05-01``).

    Understands ``2024-05-01``, ``1.5.2024`` (day first), ``5/1/2024`` (month
    first for ``en-US`` and inputs without a locale, day first otherwise),
    ``1 May 2024``, ``May 1st``, ``today``, ``tomorrow``, ``yesterday``,
    ``monday`` ... (the next such day, today excluded). A date without a year is
    the next one from today on.
    """

    name = "date"

    def parse(self, text: str) -> Answer | None:
        return self.parse_date(text, dt.date.today(), month_first=True)

    def parse_turn(self, text: str, run: TurnRun) -> Answer | None:
        today = dt.datetime.fromtimestamp(run.now).date() if run.now else dt.date.today()
        locale = (run.turn.locale or "en-US").replace("_", "-").lower()
        return self.parse_date(text, today, month_first=locale in ("en-us", "en"))

    @staticmethod
    def parse_date(text: str, today: dt.date, *, month_first: bool) -> Answer | None:
        lowered = text.casefold()
        found: dt.date | None = None
        try:
            if match := _ISO_DATE.search(lowered):
                found = dt.date(int(match[1]), int(match[2]), int(match[3]))
            elif match := _NUMERIC_DATE.search(lowered):
                first, second, year = int(match[1]), int(match[3]), int(match[4])
                year += 2000 if year < 100 else 0
                month_first_here = month_first and match[2] == "/"
                month, day = (first, second) if month_first_here else (second, first)
                found = dt.date(year, month, day)
            elif match := _DAY_MONTH.search(lowered):
                found = _with_year(today, int(match[1]), _MONTHS[match[2]], match[3])
            elif match := _MONTH_DAY.search(lowered):
                found = _with_year(today, int(match[2]), _MONTHS[match[1]], match[3])
        except ValueError:  # 31 February and the like
            return None
        if found is None:
            words = re.findall(r"[a-z]+", lowered)
            relative = [_RELATIVE[word] for word in words if word in _RELATIVE]
            weekdays = [_WEEKDAYS.index(word) for word in words if word in _WEEKDAYS]
            if len(relative) + len(weekdays) != 1:
                return None
            if relative:
                found = today + dt.timedelta(days=relative[0])
            else:
                ahead = (weekdays[0] - today.weekday()) % 7 or 7
                found = today + dt.timedelta(days=ahead)
        return Answer(found.isoformat())


def _with_year(today: dt.date, day: int, month: int, year: str | None) -> dt.date:
    if year is not None:
        return dt.date(int(year), month, day)
    found = dt.date(today.year, month, day)
    return found if found >= today else dt.date(today.year + 1, month, day)


class IntentAnswer(AnswerType):
    """The input's intent (``input.intent``), optionally one of ``intents``; stores its name."""

    name = "intent"

    def __init__(self, intents: list[str] | None) -> None:
        self.intents = frozenset(intents) if intents else None

    @classmethod
    def from_fields(cls, fields: FieldReader) -> AnswerType:
        intents = fields.string_list("intents")
        if intents is not None and not intents:
            fields.problem("'intents' must not be empty", "intents")
        return cls(intents)

    def parse(self, text: str) -> Answer | None:
        return None  # needs the turn's intent: see parse_turn

    def parse_turn(self, text: str, run: TurnRun) -> Answer | None:
        intent = run.scope["input"]["intent"]
        if intent is None or (self.intents is not None and intent not in self.intents):
            return None
        return Answer(intent)


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
            DateAnswer,
            IntentAnswer,
        )
    }
)
