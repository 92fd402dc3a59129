"""Texts of literals and lookups, and ``is none`` tests, render without a Jinja context
exactly as Jinja renders them."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from flowhook.flows.templates import TemplateCompiler, make_scope
from flowhook.flows.types import TurnInput
from flowhook.flows.values import Expression, Text

COMPILER = TemplateCompiler()

CONTEXTS: list[dict[str, Any]] = [
    {},
    {"a": None, "n": 0, "f": 1.5, "t": True, "s": "x\u0000y\n", "e": ""},
    {"a": {"b": {"c": [1, {"d": None}]}}, "s": "str", "l": [1, 2]},
    {"a": {"b": "deep"}, "items": {"x": 1}, "nested": {"a": {"b": {"c": {"d": 4}}}}},
    {"a": {"b": 7}, "s": {"x": "y"}, "l": "list?"},
]
INPUTS = [
    TurnInput(user_id="u", session_id="s", trace_id="t", text=None, data={}),
    TurnInput(user_id="u", session_id="s", trace_id="t", text="héllo {{ x }}", data={"k": 1}),
    TurnInput(user_id="u", session_id="s", trace_id="t", text="", data={"k": {"v": None}}),
]
TEXTS = [
    "You said: {{ input.text }}",
    "{{ input.text }}",
    "{{ input.data }}",
    "{{ input.data.k }}/{{ input.data.k.v }}|",
    "{{ context.a }} {{ context.a.b }} {{ context.a.b.c }}",
    "{{ context.missing }}-{{ context.missing.deeper }}-",
    "{{ context.n }}{{ context.f }}{{ context.t }}{{ context.s }}{{ context.e }}",
    "{{ context.s.x }} {{ context.l }}",
    "{{ context.nested.a.b.c.d }}",
    "{{ context }}",
    "{{ profile.name }} {{ config.brand }}",
    "line\n{{ context.a }}\n",
    "{{ context.items }}",  # a dict attribute name: through Jinja
]
TESTS = [
    "input.text is none",
    "input.text is not none",
    "context.a is none",
    "context.a is not none",
    "context.missing is none",
    "context.missing is not none",
    "context.a.b.c is none",
    "context.s.x is none",
    "context.l is not none",
    "not (context.n is none)",
    "input.data.k.v is none",
]


def scopes() -> list[dict[str, Any]]:
    return [
        make_scope(turn, context, {"name": "Ann"}, {"brand": None})
        for turn, context in itertools.product(INPUTS, CONTEXTS)
    ]


@pytest.mark.parametrize("source", TEXTS)
def test_text_parts_render_as_jinja_does(source: str) -> None:
    """Every text of literals and lookups gives, in every scope (missing keys, None,
    numbers, booleans, nested and non-dict values), the very string Jinja renders."""
    text = COMPILER.text(source)
    assert isinstance(text, Text)
    assert (text.parts is None) == ("items" in source)
    jinja_only = Text(text.source, text.template)
    for scope in scopes():
        assert text.evaluate(scope) == jinja_only.evaluate(scope), scope


def test_texts_with_other_constructs_have_no_fast_path() -> None:
    """Filters, blocks and operators are left to Jinja."""
    for source in ("{{ input.text | upper }}", "{% if context.a %}x{% endif %}", "{{ 1 + 1 }}"):
        text = COMPILER.text(source)
        assert isinstance(text, Text)
        assert text.parts is None


@pytest.mark.parametrize("source", TESTS)
def test_none_tests_give_what_jinja_gives(source: str) -> None:
    """``x is none`` / ``x is not none`` (an undefined value is not none) give the same
    truth as the Jinja expression in every scope."""
    expr = COMPILER.expression(source)
    assert expr.none_test is not None
    jinja_only = Expression(expr.source, expr.template)
    for scope in scopes():
        assert expr.native(scope) == jinja_only.native(scope), scope
