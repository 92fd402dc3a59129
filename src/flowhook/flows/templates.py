"""Templates and expressions over ``input`` and ``context``, compiled once at load time.

Everything a flow file says in ``{{ }}`` goes through one sandboxed Jinja2
environment (``ImmutableSandboxedEnvironment``: no file access, no attribute
tricks, no mutating methods). Flows are compiled when they are loaded; a turn
only evaluates the compiled objects, so the hot path never parses.

Missing values are forgiving on purpose: a missing context key (even a chain
like ``context.order.id``) is *undefined*, renders as an empty string and
evaluates to ``None``; ``None`` itself renders as an empty string. Comparing an
undefined value (``context.missing > 3``) is a run-time error of the flow.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Protocol

from jinja2 import (
    ChainableUndefined,
    TemplateSyntaxError,
    Undefined,
    UndefinedError,
    meta,
    nodes,
)
from jinja2.defaults import DEFAULT_NAMESPACE
from jinja2.environment import Template
from jinja2.parser import Parser
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from flowhook.errors import FlowError
from flowhook.flows.types import TurnInput

Scope = dict[str, Any]
"""The variables a template sees: ``input`` and ``context``."""

TEMPLATE_VARIABLES = frozenset({"input", "context"})

# Jinja's default globals (range, dict, namespace, ...). They are put into each
# turn's scope once, so templates can render with a *shared* context: Jinja then
# skips merging globals and variables into a new dict on every render, which is
# most of the cost of a small template.
TEMPLATE_GLOBALS: Mapping[str, Any] = MappingProxyType(dict(DEFAULT_NAMESPACE))

# A string that is one ``{{ expr }}`` and nothing else evaluates to the native
# value of ``expr``; the inner part must not open or close another tag.
_SINGLE_EXPRESSION = re.compile(r"\s*\{\{((?:(?!\{\{|\}\}|\{%|\{#).)*)\}\}\s*", re.DOTALL)
_TEMPLATE_MARKERS = ("{{", "{%", "{#")


class FlowRuntimeError(FlowError):
    """A flow failed while running a turn (e.g. a value that cannot be stored as JSON)."""


class TemplateProblem(Exception):
    """A template or expression that does not compile.

    ``line_offset`` counts lines from the first line of the template.
    """

    def __init__(self, message: str, line_offset: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.line_offset = line_offset


class Value(Protocol):
    """A compiled value: evaluates to plain JSON data (str, int, float, bool, None, dict, list)."""

    def evaluate(self, scope: Scope) -> Any: ...


class Constant:
    """A value without templates. Only immutable scalars: containers are rebuilt per turn."""

    __slots__ = ("value",)

    def __init__(self, value: str | int | float | bool | None) -> None:
        self.value = value

    def evaluate(self, scope: Scope) -> Any:
        return self.value


class Text:
    """A string with ``{{ }}`` / ``{% %}`` parts; always renders to a string."""

    __slots__ = ("source", "template")

    def __init__(self, source: str, template: Template) -> None:
        self.source = source
        self.template = template

    def evaluate(self, scope: Scope) -> str:
        template = self.template
        return "".join(template.root_render_func(template.new_context(scope, shared=True)))


class Expression:
    """A Jinja2 expression; evaluates to its native value, made JSON-plain.

    ``template`` is a one-statement template ``{% set result = <expression> %}``,
    the same construction as ``Environment.compile_expression``, run with a
    shared context for speed.
    """

    __slots__ = ("lookup", "source", "template")

    def __init__(
        self, source: str, template: Template, lookup: tuple[str, ...] | None = None
    ) -> None:
        self.source = source
        self.template = template
        self.lookup = lookup

    def native(self, scope: Scope) -> Any:
        if self.lookup is not None:
            found, value = _lookup(scope, self.lookup)
            if found:
                return value
        template = self.template
        context = template.new_context(scope, shared=True)
        for _ in template.root_render_func(context):
            pass
        return context.vars["result"]

    def evaluate(self, scope: Scope) -> Any:
        return to_plain(self.native(scope))

    def is_true(self, scope: Scope) -> bool:
        return bool(self.native(scope))


class DictValue:
    __slots__ = ("items",)

    def __init__(self, items: tuple[tuple[str, Value], ...]) -> None:
        self.items = items

    def evaluate(self, scope: Scope) -> dict[str, Any]:
        return {key: value.evaluate(scope) for key, value in self.items}


class ListValue:
    __slots__ = ("items",)

    def __init__(self, items: tuple[Value, ...]) -> None:
        self.items = items

    def evaluate(self, scope: Scope) -> list[Any]:
        return [value.evaluate(scope) for value in self.items]


_PLAIN_SCALARS = (str, int, float, bool, type(None))


def to_plain(value: Any) -> Any:
    """Turn a template result into JSON data, so session state always serialises."""
    if type(value) in _PLAIN_SCALARS:
        return value
    if isinstance(value, Undefined):
        return None
    if isinstance(value, Mapping):
        plain: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise FlowRuntimeError(f"object keys must be strings, got {key!r}")
            plain[str(key)] = to_plain(item)
        return plain
    if isinstance(value, list | tuple | range):
        return [to_plain(item) for item in value]
    # Subclasses (e.g. Jinja's Markup) become their base type.
    for scalar in (bool, int, float, str):
        if isinstance(value, scalar):
            return scalar(value)
    raise FlowRuntimeError(f"a {type(value).__name__} cannot be stored as JSON")


_MISSING = object()


def _lookup(scope: Scope, path: tuple[str, ...]) -> tuple[bool, Any]:
    """Fast path for ``context.a.b``-style expressions over plain dicts.

    Gives what Jinja would (a missing key is undefined, i.e. ``None``) without
    running a template; ``(False, None)`` sends anything else (a list, a str,
    an object) through Jinja so its sandbox rules apply unchanged.
    """
    value: Any = scope
    for key in path:
        if type(value) is not dict:
            return False, None
        value = value.get(key, _MISSING)
        if value is _MISSING:
            return True, None
    return True, value


def _lookup_path(expression: nodes.Expr) -> tuple[str, ...] | None:
    """``("context", "a", "b")`` for ``context.a.b``; ``None`` for any other expression."""
    path: list[str] = []
    while isinstance(expression, nodes.Getattr):
        # Names of dict attributes (``items``, ``get``) resolve to methods in Jinja.
        if expression.attr in _DICT_ATTRIBUTES:
            return None
        path.append(expression.attr)
        expression = expression.node
    if not isinstance(expression, nodes.Name) or expression.name not in TEMPLATE_VARIABLES:
        return None
    path.append(expression.name)
    return tuple(reversed(path))


_DICT_ATTRIBUTES = frozenset(dir(dict))


def make_scope(turn: TurnInput, context: dict[str, Any]) -> dict[str, Any]:
    """What templates see during one turn (see ``TEMPLATE_GLOBALS`` for why globals are in)."""
    return {**TEMPLATE_GLOBALS, "input": input_variables(turn), "context": context}


def input_variables(turn: TurnInput) -> dict[str, Any]:
    """``input`` in templates: the wire format's camelCase keys plus snake_case aliases."""
    return {
        "text": turn.text,
        "data": turn.data,
        "userId": turn.user_id,
        "sessionId": turn.session_id,
        "traceId": turn.trace_id,
        "locale": turn.locale,
        "user_id": turn.user_id,
        "session_id": turn.session_id,
        "trace_id": turn.trace_id,
    }


def has_template_markers(source: str) -> bool:
    return any(marker in source for marker in _TEMPLATE_MARKERS)


class FlowUndefined(ChainableUndefined):
    """Missing values chain and render empty; a blocked sandbox access raises instead.

    The sandbox reports an unsafe attribute (``__class__``, ``dict.update``) as an
    undefined value carrying ``SecurityError``; rendering that as an empty string
    would hide the attempt, so it fails the turn instead.
    """

    __slots__ = ()

    def __init__(
        self,
        hint: str | None = None,
        obj: Any = None,
        name: str | None = None,
        exc: type[Exception] = UndefinedError,
    ) -> None:
        if exc is SecurityError:
            raise SecurityError(hint or f"access to {name!r} is not allowed")
        super().__init__(hint, obj, name, exc)


def _render_none_as_empty(value: Any) -> Any:
    return "" if value is None else value


class TemplateCompiler:
    """Compiles the strings of flow files; one per loaded registry (no module-level state)."""

    def __init__(self) -> None:
        self.environment = ImmutableSandboxedEnvironment(
            undefined=FlowUndefined,
            finalize=_render_none_as_empty,
            autoescape=False,
        )
        self._known_names = TEMPLATE_VARIABLES | frozenset(TEMPLATE_GLOBALS)

    def text(self, source: str) -> Value:
        """A text field: renders to a string."""
        if not has_template_markers(source):
            return Constant(source)
        try:
            parsed = self.environment.parse(source)
            template = self.environment.from_string(parsed)
        except TemplateSyntaxError as exc:
            raise TemplateProblem(f"template syntax error: {exc.message}", exc.lineno - 1) from exc
        self._check_names(meta.find_undeclared_variables(parsed))
        return Text(source, template)

    def value_string(self, source: str) -> Value:
        """A string inside ``data`` or ``set``: one ``{{ expr }}`` keeps its native type."""
        match = _SINGLE_EXPRESSION.fullmatch(source)
        if match is None:
            return self.text(source)
        return self.expression(match.group(1).strip(), offset=source[: match.start(1)].count("\n"))

    def expression(self, source: str, *, offset: int = 0) -> Expression:
        """A bare expression such as an ``if`` condition (no ``{{ }}`` around it)."""
        if has_template_markers(source) and source.strip().startswith("{{"):
            raise TemplateProblem("write the expression without {{ }} around it", offset)
        if not source.strip():
            raise TemplateProblem("the expression is empty", offset)
        try:
            parser = Parser(self.environment, source, state="variable")
            expression = parser.parse_expression()
            if not parser.stream.eos:
                raise TemplateSyntaxError(
                    "unexpected text after the expression", parser.stream.current.lineno
                )
        except TemplateSyntaxError as exc:
            raise TemplateProblem(
                f"expression syntax error: {exc.message}", offset + exc.lineno - 1
            ) from exc
        self._check_names({name.name for name in expression.find_all(nodes.Name)})
        body = nodes.Assign(nodes.Name("result", "store"), expression, lineno=1)
        template = self.environment.from_string(nodes.Template([body], lineno=1))
        return Expression(source, template, _lookup_path(expression))

    def _check_names(self, names: set[str]) -> None:
        unknown = sorted(names - self._known_names)
        if unknown:
            raise TemplateProblem(
                f"unknown template variable '{unknown[0]}' (templates see: input, context)"
            )
