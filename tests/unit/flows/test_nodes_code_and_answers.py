"""The code node, the date and intent answer types, and validation of the new fields."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from flowhook.flows import SessionState, validate_path
from flowhook.flows.answers import DateAnswer

from .helpers import NOW, Conversation, engine_for, make_input, write_flow

HELPERS = """
import asyncio

def lookup(input, context, profile):
    if input["text"] == "boom":
        raise ValueError("no such order")
    return {
        "outputs": ["Looked up " + input["text"], {"text": None, "data": {"n": 1}}],
        "context": {"found": input["text"]},
        "profile": {"lastLookup": input["text"]},
    }

async def pick(input, context, profile):
    await asyncio.sleep(0)
    return {"next": "second" if context.get("found") else "first"}

def nothing(input, context, profile):
    context["leak"] = True  # a copy: has no effect
    return None
"""


def code_engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "helpers.py").write_text(textwrap.dedent(HELPERS), encoding="utf-8")
    return engine_for(
        tmp_path,
        """
        nodes:
          call: {type: code, function: "helpers.py:lookup", next: route, error: failed}
          route: {type: code, function: "helpers.py:pick", branches: [first, second]}
          first: {type: say, text: first}
          second: {type: code, function: "helpers.py:nothing", next: done}
          done: {type: say, text: "found {{ context.found }}"}
          failed: {type: say, text: "error: {{ context.codeError }}"}
        """,
    )


async def test_code_returns_outputs_and_updates(tmp_path: Path) -> None:
    """A code function's outputs are sent, its context/profile updates applied, ``next`` obeyed."""
    engine = code_engine(tmp_path)
    result = await engine.run_turn("test", SessionState(), make_input("A-1"))
    assert [(o.text, o.data) for o in result.outputs] == [
        ("Looked up A-1", {}),
        (None, {"n": 1}),
        ("found A-1", {}),
    ]
    assert result.state.context == {"found": "A-1"}
    assert result.profile == {"lastLookup": "A-1"}


async def test_code_exception_goes_to_error(tmp_path: Path) -> None:
    """A function that raises sends the flow to ``error`` with ``context.codeError``."""
    engine = code_engine(tmp_path)
    assert await Conversation(engine).texts("boom") == ["error: ValueError: no such order"]


async def test_code_exception_without_error_branch_fails_the_turn(tmp_path: Path) -> None:
    """Without ``error`` a raising function fails the turn with the error output."""
    (tmp_path / "helpers.py").write_text(textwrap.dedent(HELPERS), encoding="utf-8")
    engine = engine_for(tmp_path, "nodes:\n  c: {type: code, function: 'helpers.py:lookup'}\n")
    assert await Conversation(engine).texts("boom") == ["Sorry, something went wrong."]


async def test_code_importable_module(tmp_path: Path) -> None:
    """``package.module:function`` imports an installed module (here the standard library)."""
    engine = engine_for(
        tmp_path,
        "nodes:\n  c: {type: code, function: 'builtins:dict', next: s}\n  s: {type: say, text: ok}\n",
    )
    # dict(input, context, profile) raises TypeError: too many arguments -> turn fails.
    assert await Conversation(engine).texts("x") == ["Sorry, something went wrong."]


def test_code_function_problems_are_load_errors(tmp_path: Path) -> None:
    """Missing modules, files and functions are reported with their line when loading."""
    (tmp_path / "helpers.py").write_text("def f(a, b, c):\n    return None\n", encoding="utf-8")
    write_flow(
        tmp_path,
        """
        nodes:
          a: {type: code, function: "helpers.py:missing", next: b}
          b: {type: code, function: "no_such_module_xyz:f", next: c}
          c: {type: code, function: "nofile.py:f", next: d}
          d: {type: code, function: "nocolon"}
        """,
    )
    problems = validate_path(tmp_path / "test.yaml")
    assert [p.split(": ", 1)[0] for p in problems] == [
        f"{tmp_path / 'test.yaml'}:{n}" for n in (2, 3, 4, 5)
    ]
    assert "'helpers.py' has no function 'missing'" in problems[0]
    assert "cannot import 'no_such_module_xyz'" in problems[1]
    assert "cannot load 'nofile.py'" in problems[2]
    assert "must look like" in problems[3]


TODAY = dt.date(2024, 5, 10)  # a Friday


@pytest.mark.parametrize(
    ("text", "month_first", "expected"),
    [
        ("2024-05-01", True, "2024-05-01"),
        ("on 1.5.2024 please", True, "2024-05-01"),
        ("5/1/2024", True, "2024-05-01"),
        ("5/1/2024", False, "2024-01-05"),
        ("1 May 2024", True, "2024-05-01"),
        ("May 20th", True, "2024-05-20"),
        ("may 1", True, "2025-05-01"),
        ("today", True, "2024-05-10"),
        ("tomorrow please", True, "2024-05-11"),
        ("yesterday", True, "2024-05-09"),
        ("Monday", True, "2024-05-13"),
        ("friday", True, "2024-05-17"),
        ("31.2.2024", True, None),
        ("today or tomorrow", True, None),
        ("whenever", True, None),
        ("", True, None),
    ],
)
def test_date_answer(text: str, month_first: bool, expected: str | None) -> None:
    """Dates in common forms become ISO dates; impossible or ambiguous ones are refused."""
    answer = DateAnswer.parse_date(text, TODAY, month_first=month_first)
    assert (answer.value if answer else None) == expected


async def test_date_question_uses_the_turn_clock_and_locale(tmp_path: Path) -> None:
    """A date question reads relative dates from the engine's clock and 1/2 by the locale."""
    engine = engine_for(
        tmp_path,
        """
        nodes:
          q: {type: question, text: "When?", answer: date, store: day,
              reprompt: "Which date?", next: ok}
          ok: {type: say, text: "{{ context.day }}"}
        """,
    )
    today = dt.datetime.fromtimestamp(NOW).date()
    conversation = Conversation(engine)
    assert await conversation.texts("hi") == ["When?"]
    assert await conversation.texts("someday") == ["Which date?"]
    assert await conversation.texts("tomorrow") == [(today + dt.timedelta(days=1)).isoformat()]
    state = SessionState(flow="test", waiting_at="q", last_active=NOW)
    result = await engine.run_turn("test", state, make_input("3/4/2024", locale="de-DE"))
    assert [o.text for o in result.outputs] == ["2024-04-03"]


INTENT_FLOW = """
intents:
  buy: {examples: ["I want to buy something", "purchase a product"]}
  cancel: {examples: ["cancel my order", "I want to cancel"]}
  other: {examples: ["what is the weather like"]}
nodes:
  q:
    type: question
    text: "Buy or cancel?"
    answer: intent
    intents: [buy, cancel]
    store: choice
    reprompt: "Please say buy or cancel."
    max_reprompts: 1
    fallback: gave_up
    next: done
  done: {type: say, text: "{{ context.choice }}"}
  gave_up: {type: say, text: "bye"}
"""


async def test_intent_answer(tmp_path: Path) -> None:
    """An intent answer accepts inputs matching one of the listed intents and stores its name."""
    conversation = Conversation(engine_for(tmp_path, INTENT_FLOW))
    assert await conversation.texts("hello") == ["Buy or cancel?"]
    assert await conversation.texts("please cancel my order") == ["cancel"]


async def test_intent_answer_refuses_other_intents_and_gives_up(tmp_path: Path) -> None:
    """An unlisted intent or no intent reprompts; after max_reprompts the fallback runs."""
    conversation = Conversation(engine_for(tmp_path, INTENT_FLOW))
    await conversation.send("hello")
    assert await conversation.texts("what is the weather like") == ["Please say buy or cancel."]
    assert await conversation.texts("qqqq zzzz") == ["bye"]


def test_new_validation_problems(tmp_path: Path) -> None:
    """Dangling flow references, undeclared intents and bad NLU fields are load errors."""
    write_flow(
        tmp_path,
        """
        intents:
          buy: {examples: []}
          "bad name!": {examples: ["x"]}
        slots:
          both: {pattern: "a", values: [b]}
          badre: {pattern: "("}
        intent_threshold: 2
        nodes:
          a: {type: goto, flow: nowhere, next: b}
          b: {type: execute_flow, flow: other, node: missing}
          c: {type: question, text: q, answer: intent, intents: [sell]}
          d: {type: switch, value: input.text, cases: {x: ghost}}
          e: {type: goto}
        """,
    )
    write_flow(tmp_path, "nodes:\n  only: {type: end}\n", "other.yaml")
    file = tmp_path / "test.yaml"
    assert validate_path(tmp_path) == [
        f"{file}:2: intent 'buy': 'examples' must not be empty",
        f"{file}:3: intents: intent name 'bad name!' may only use letters, digits, '_', '.', '-'",
        f"{file}:5: slot 'both': needs exactly one of 'pattern' and 'values'",
        f"{file}:6: slot 'badre': 'pattern' is not a valid regular expression: "
        "missing ), unterminated subpattern at position 0",
        f"{file}:7: 'intent_threshold' must be a number from 0 to 1",
        f"{file}:9: node 'a': unknown field 'next'",
        f"{file}:10: node 'b' is unreachable from the start node 'a'",
        f"{file}:11: node 'c': intent 'sell' is not declared in the flow",
        f"{file}:11: node 'c' is unreachable from the start node 'a'",
        f"{file}:12: node 'd': case 'x': node 'ghost' does not exist",
        f"{file}:12: node 'd' is unreachable from the start node 'a'",
        f"{file}:13: node 'e': needs 'node' (in this flow) and/or 'flow' (another flow)",
        f"{file}:13: node 'e' is unreachable from the start node 'a'",
        f"{file}:9: node 'a': flow 'nowhere' does not exist (did you mean 'other'?)",
        f"{file}:10: node 'b': flow 'other' has no node 'missing'",
    ]


def test_intent_answer_needs_declared_intents(tmp_path: Path) -> None:
    """``answer: intent`` in a flow without intents is a load error."""
    write_flow(tmp_path, "nodes:\n  q: {type: question, text: q, answer: intent}\n")
    assert validate_path(tmp_path / "test.yaml") == [
        f"{tmp_path / 'test.yaml'}:2: node 'q': 'answer: intent' needs 'intents' declared in the flow"
    ]
