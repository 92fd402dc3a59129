"""Templates and expressions over ``input``, ``context``, ``profile`` and ``config``.

They are compiled once at load time.

Everything a flow file says in ``{{ }}`` goes through one sandboxed Jinja2
environment (``ImmutableSandboxedEnvironment``: no file access, no attribute
tricks, no mutating methods, ``range`` of at most 100,000 items), with bounds of
its own: no argument, repetition or format width that builds more than
``MAX_OUTPUT_CHARS``, and templates that can loop or call have their output size
and wall time bounded (``flowhook.flows.template_bounds``). Flows are compiled
when they are loaded; a turn only evaluates the compiled objects, so the hot
path never parses.

Missing values are forgiving on purpose: a missing context key (even a chain
like ``context.order.id``) is *undefined*, renders as an empty string and
evaluates to ``None``; ``None`` itself renders as an empty string. Comparing an
undefined value (``context.missing > 3``) is a run-time error of the flow.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from jinja2 import (
    ChainableUndefined,
    TemplateSyntaxError,
    UndefinedError,
    meta,
    nodes,
)
from jinja2.environment import Template
from jinja2.exceptions import SecurityError, TemplateRuntimeError
from jinja2.parser import Parser
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import missing

from flowhook.flows.template_bounds import MAX_OUTPUT_CHARS, bounded, check_arguments
from flowhook.flows.types import TurnInput
from flowhook.flows.values import Constant, Expression, Text, Value

TEMPLATE_VARIABLES = frozenset({"input", "context", "profile", "config"})
_VARIABLES_HINT = "templates see: input, context, profile, config"

# The sandbox's globals (range, dict, namespace, ...): its own, so ``range`` is the
# sandbox's bounded one, never Python's. They are put into each turn's scope once,
# so templates can render with a *shared* context: Jinja then skips merging globals
# and variables into a new dict on every render, which is most of the cost of a
# small template.
TEMPLATE_GLOBALS: Mapping[str, Any] = MappingProxyType(
    dict(ImmutableSandboxedEnvironment().globals)
)

# Nodes that can make a rendering long or big; templates with one are bounded.
_COSTLY_NODES = (nodes.For, nodes.Call, nodes.Filter, nodes.Mul, nodes.Pow, nodes.Mod)
# str methods and filters whose integer arguments size their result.
_SIZING_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})
_FORMAT_METHODS = frozenset({"format", "format_map"})
_SIZING_FILTERS = frozenset({"center", "indent", "wordwrap", "slice", "truncate", "batch"})
_OTHER_TEMPLATES = (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)
_NUMBER = re.compile(r"\d+")

# A string that is one ``{{ expr }}`` and nothing else evaluates to the native
# value of ``expr``; the inner part must not open or close another tag.
_SINGLE_EXPRESSION = re.compile(r"\s*\{\{((?:(?!\{\{|\}\}|\{%|\{#).)*)\}\}\s*", re.DOTALL)
_TEMPLATE_MARKERS = ("{{", "{%", "{#")


class TemplateProblem(Exception):
    """A template or expression that does not compile.

    ``line_offset`` counts lines from the first line of the template.
    """

    def __init__(self, message: str, line_offset: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.line_offset = line_offset


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


_NO_INTENT: Mapping[str, Any] = MappingProxyType({"intent": None, "intentScore": 0.0, "slots": {}})


def make_scope(
    turn: TurnInput,
    context: dict[str, Any],
    profile: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
    nlu: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What templates see during one turn (see ``TEMPLATE_GLOBALS`` for why globals are in).

    ``nlu`` holds ``intent``, ``intentScore`` and ``slots`` for ``input``.
    """
    return {
        **TEMPLATE_GLOBALS,
        "input": input_variables(turn, nlu),
        "context": context,
        "profile": profile if profile is not None else {},
        "config": config if config is not None else {},
    }


def input_variables(turn: TurnInput, nlu: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``input`` in templates: the wire format's camelCase keys plus snake_case aliases."""
    found = nlu if nlu is not None else _NO_INTENT
    return {
        "intent": found["intent"],
        "intentScore": found["intentScore"],
        "slots": dict(found["slots"]),
        "intent_score": found["intentScore"],
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
        obj: Any = missing,
        name: str | None = None,
        exc: type[TemplateRuntimeError] = UndefinedError,
    ) -> None:
        if exc is SecurityError:
            raise SecurityError(hint or f"access to {name!r} is not allowed")
        super().__init__(hint, obj, name, exc)


def _render_none_as_empty(value: Any) -> Any:
    return "" if value is None else value


def _check_format(text: Any, limit: int) -> None:
    """A format string's widths (``%099999999d``, ``{:>999999999}``) stay in bounds."""
    if isinstance(text, str) and any(int(n) > limit for n in _NUMBER.findall(text)):
        raise SecurityError(f"a width in the format string is over the template limit {limit}")


def _sized(name: str, function: Callable[..., Any], limit: int) -> Callable[..., Any]:
    """A filter whose integer arguments (after the value) stay within ``limit``."""

    @functools.wraps(function)
    def checked(*args: Any, **kwargs: Any) -> Any:
        check_arguments(args[1:], kwargs, limit)
        return function(*args, **kwargs)

    return checked


class FlowEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox plus limits on what one expression may build."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def __init__(self, max_chars: int = MAX_OUTPUT_CHARS, **options: Any) -> None:
        super().__init__(**options)
        self.max_chars = max_chars
        for name in _SIZING_FILTERS:
            self.filters[name] = _sized(name, self.filters[name], max_chars)
        self.filters["format"] = self._format_filter(self.filters["format"])

    def _format_filter(self, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def checked(value: Any, *args: Any, **kwargs: Any) -> Any:
            _check_format(value, self.max_chars)
            return function(value, *args, **kwargs)

        return checked

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        limit = self.max_chars
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(times, int)
                if sized and len(seq) * times > limit:
                    raise SecurityError(f"repetition builds more than {limit} items")
        elif operator == "**":
            big = isinstance(right, int) and isinstance(left, int | float) and abs(right) > 1000
            if big and abs(left) > 1:
                raise SecurityError("the exponent is too large for a template")
        elif operator == "%" and isinstance(left, str):
            _check_format(left, limit)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        # The sandbox hands out str.format as a wrapper around the bound method.
        method = getattr(__obj, "__wrapped__", __obj)
        owner = getattr(method, "__self__", None)
        name = getattr(method, "__name__", "")
        if isinstance(owner, str):
            if name in _SIZING_METHODS:
                check_arguments(args, kwargs, __self.max_chars)
            elif name in _FORMAT_METHODS:
                _check_format(owner, __self.max_chars)
        return super().call(__context, __obj, *args, **kwargs)


def _bound(template: Template, tree: nodes.Node) -> Template:
    """Templates that can loop, call or multiply get their rendering bounded."""
    if any(True for _ in tree.find_all(_COSTLY_NODES)):
        template.root_render_func = bounded(template.root_render_func)  # type: ignore[assignment]
    return template


class TemplateCompiler:
    """Compiles the strings of flow files; one per loaded registry (no module-level state)."""

    def __init__(self) -> None:
        self.environment = FlowEnvironment(
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
            template = _bound(self.environment.from_string(parsed), parsed)
        except TemplateSyntaxError as exc:
            raise TemplateProblem(f"template syntax error: {exc.message}", exc.lineno - 1) from exc
        self._check_names(meta.find_undeclared_variables(parsed))
        if any(True for _ in parsed.find_all(_OTHER_TEMPLATES)):
            raise TemplateProblem("flow templates cannot include, import or extend templates")
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
        tree = nodes.Template([body], lineno=1)
        template = _bound(self.environment.from_string(tree), tree)
        return Expression(source, template, _lookup_path(expression))

    def _check_names(self, names: set[str]) -> None:
        unknown = sorted(names - self._known_names)
        if unknown:
            raise TemplateProblem(f"unknown template variable '{unknown[0]}' ({_VARIABLES_HINT})")
