"""Templates and expressions: value rules, missing values, compile-time checks."""

from __future__ import annotations

from typing import Any

import pytest

from flowhook.flows.errors import FlowRuntimeError
from flowhook.flows.templates import TemplateCompiler, TemplateProblem, make_scope
from flowhook.flows.values import Constant, Expression, Text, to_plain

from .helpers import make_input


@pytest.fixture
def compiler() -> TemplateCompiler:
    return TemplateCompiler()


def scope(context: dict[str, Any] | None = None, text: str | None = "hi") -> dict[str, Any]:
    data = {"order": {"id": 7}, "list": [1, 2]}
    return make_scope(make_input(text, data, locale="de-DE"), context or {})


def test_plain_strings_are_constants(compiler: TemplateCompiler) -> None:
    """A string without template markers is not compiled at all."""
    value = compiler.text("Just text")
    assert isinstance(value, Constant)
    assert value.evaluate(scope()) == "Just text"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ input.data }}", {"order": {"id": 7}, "list": [1, 2]}),
        ("  {{ input.data.order.id }} ", 7),
        ("{{ input.data.list }}", [1, 2]),
        ("{{ context.missing }}", None),
        ("{{ context.missing.deeper.still }}", None),
        ("{{ input.text == 'hi' }}", True),
        ("{{ input.data.order.id }}!", "7!"),
        ("{{ input.text }} {{ input.text }}", "hi hi"),
        ("{% if true %}{{ 1 }}{% endif %}", "1"),
    ],
)
def test_value_strings(compiler: TemplateCompiler, source: str, expected: Any) -> None:
    """Exactly one ``{{ expr }}`` keeps the native value; anything else renders to text."""
    assert compiler.value_string(source).evaluate(scope()) == expected


@pytest.mark.parametrize(
    ("source", "text", "expected"),
    [
        ("{{ input.userId }}/{{ input.user_id }}", "hi", "user123/user123"),
        (
            "{{ input.sessionId }} {{ input.traceId }} {{ input.locale }}",
            "hi",
            "session123 trace-1 de-DE",
        ),
        ("[{{ context.missing }}]", "hi", "[]"),
        ("[{{ input.text }}]", None, "[]"),
        ("{{ context.n + 1 }}", "hi", "42"),
    ],
)
def test_text_rendering(
    compiler: TemplateCompiler, source: str, text: str | None, expected: str
) -> None:
    """Texts see camelCase and snake_case input keys; missing values and None render empty."""
    assert compiler.text(source).evaluate(scope({"n": 41}, text)) == expected


def test_lookup_fast_path_matches_jinja(compiler: TemplateCompiler) -> None:
    """Dotted lookups take a fast path but give what the Jinja expression gives."""
    expression = compiler.expression("context.a.b")
    assert isinstance(expression, Expression)
    assert expression.lookup == ("context", "a", "b")
    contexts: list[dict[str, Any]] = [
        {"a": {"b": [1]}},
        {"a": {}},
        {},
        {"a": "t"},
        {"a": {"b": None}},
    ]
    for context in contexts:
        current = scope(context)
        jinja_value = to_plain(Expression(expression.source, expression.template).native(current))
        assert expression.evaluate(current) == jinja_value


def test_dict_method_names_are_not_fast_lookups(compiler: TemplateCompiler) -> None:
    """``context.items`` is the dict method in Jinja, so it never takes the fast path."""
    assert compiler.expression("context.items").lookup is None


@pytest.mark.parametrize(
    ("source", "message", "offset"),
    [
        ("{{ x }}", "write the expression without {{ }} around it", 0),
        ("  ", "the expression is empty", 0),
        ("1 +", "expression syntax error: unexpected 'end of template'", 0),
        ("a b", "expression syntax error: unexpected text after the expression", 0),
        (
            "profiles.name",
            "unknown template variable 'profiles' (templates see: input, context, profile, config)",
            0,
        ),
    ],
)
def test_expression_problems(
    compiler: TemplateCompiler, source: str, message: str, offset: int
) -> None:
    """Broken expressions are rejected at compile time with a precise message."""
    with pytest.raises(TemplateProblem) as caught:
        compiler.expression(source)
    assert (caught.value.message, caught.value.line_offset) == (message, offset)


def test_globals_are_allowed_names(compiler: TemplateCompiler) -> None:
    """Jinja's own globals (``range``, ``dict``) are not reported as unknown variables."""
    value = compiler.text("{% for i in range(3) %}{{ i }}{% endfor %}")
    assert isinstance(value, Text)
    assert value.evaluate(scope()) == "012"


def test_to_plain_makes_json_data() -> None:
    """Template results become JSON data: tuples to lists; other objects are refused."""
    assert to_plain({"a": (1, [2, (3,)]), "r": range(2)}) == {"a": [1, [2, [3]]], "r": [0, 1]}
    with pytest.raises(FlowRuntimeError, match="a set cannot be stored as JSON"):
        to_plain({1, 2})
    with pytest.raises(FlowRuntimeError, match="object keys must be strings"):
        to_plain({1: "a"})
