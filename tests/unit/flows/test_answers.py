"""Answer types on their own: what each accepts and what it rejects."""

from __future__ import annotations

import re

import pytest

from flowhook.flows.answers import (
    ANSWER_TYPES,
    Answer,
    AnswerType,
    ChoiceAnswer,
    EmailAnswer,
    NumberAnswer,
    RegexAnswer,
    TextAnswer,
    YesNoAnswer,
)


def test_registry_names_every_answer_type() -> None:
    """The answer registry holds exactly the documented types."""
    assert sorted(ANSWER_TYPES) == [
        "choice",
        "date",
        "email",
        "intent",
        "number",
        "regex",
        "text",
        "yes_no",
    ]


@pytest.mark.parametrize(
    ("answer_type", "text", "expected"),
    [
        (TextAnswer(), " hi ", Answer("hi")),
        (TextAnswer(), "   ", None),
        (NumberAnswer(), "12345", Answer(12345)),
        (NumberAnswer(), "-3", Answer(-3)),
        (NumberAnswer(), "It's 0.5.", Answer(0.5)),
        (NumberAnswer(), "between 1 and 2", None),
        (NumberAnswer(), "A123", None),
        (NumberAnswer(), "no number", None),
        (NumberAnswer(), "1.2.3", None),
        (YesNoAnswer(), "yes", Answer(True)),
        (YesNoAnswer(), "Sure, go on", Answer(True)),
        (YesNoAnswer(), "of course", Answer(True)),
        (YesNoAnswer(), "No thanks", Answer(False)),
        (YesNoAnswer(), "please don\u2019t", Answer(False)),
        (YesNoAnswer(), "not really", Answer(False)),
        (YesNoAnswer(), "maybe", None),
        (YesNoAnswer(), "!!!", None),
        (EmailAnswer(), "bob@example.com", Answer("bob@example.com")),
        (EmailAnswer(), "mail: bob@example.com.", Answer("bob@example.com")),
        (EmailAnswer(), "bob@localhost", None),
        (EmailAnswer(), "a@x.org or b@y.org", None),
        (EmailAnswer(), "a@x.org, again a@x.org", Answer("a@x.org")),
        (RegexAnswer(re.compile(r"[A-Z]{2}\d+")), "code XY42 ok", Answer("XY42")),
        (RegexAnswer(re.compile(r"^\d{3}$")), "1234", None),
        (ChoiceAnswer(["Red", "Dark blue"]), "  DARK   blue. ", Answer("Dark blue")),
        (ChoiceAnswer(["Red", "Dark blue"]), "1", Answer("Red")),
        (ChoiceAnswer(["Red", "Dark blue"]), "3", None),
        (ChoiceAnswer(["Red", "Dark blue"]), "green", None),
    ],
)
def test_answer_parsing(answer_type: AnswerType, text: str, expected: Answer | None) -> None:
    """Each answer type returns the exact value for valid text and ``None`` for invalid text."""
    assert answer_type.parse(text) == expected
