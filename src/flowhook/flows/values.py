"""Compiled values: what a flow's texts, data and conditions become after loading.

Each value has ``evaluate(scope)``; the scope holds ``input`` and ``context``
(see ``flowhook.flows.templates.make_scope``). Evaluation never parses: it
runs templates that were compiled once when the flow was loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from jinja2 import Undefined
from jinja2.environment import Template

from flowhook.flows.errors import FlowRuntimeError

Scope = dict[str, Any]
"""The variables a template sees: ``input`` and ``context``."""


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


# A text made only of literal pieces and ``{{ context.a.b }}``-style lookups:
# each part is either literal text or the path of a lookup.
TextParts = tuple[str | tuple[str, ...], ...]


class Text:
    """A string with ``{{ }}`` / ``{% %}`` parts; always renders to a string.

    ``parts`` (when the text is only literals and lookups over plain dicts) renders
    without a Jinja context: what Jinja would give, a missing value or ``None`` as
    an empty string, anything but plain dicts on the way through Jinja itself.
    """

    __slots__ = ("parts", "source", "template")

    def __init__(self, source: str, template: Template, parts: TextParts | None = None) -> None:
        self.source = source
        self.template = template
        self.parts = parts

    def evaluate(self, scope: Scope) -> str:
        if self.parts is not None:
            rendered = _render_parts(scope, self.parts)
            if rendered is not None:
                return rendered
        template = self.template
        return "".join(template.root_render_func(template.new_context(scope, shared=True)))


class Expression:
    """A Jinja2 expression; evaluates to its native value, made JSON-plain.

    ``template`` is a one-statement template ``{% set result = <expression> %}``,
    the same construction as ``Environment.compile_expression``, run with a
    shared context for speed.
    """

    __slots__ = ("lookup", "none_test", "source", "template")

    def __init__(
        self,
        source: str,
        template: Template,
        lookup: tuple[str, ...] | None = None,
        none_test: tuple[tuple[str, ...], bool] | None = None,
    ) -> None:
        """``none_test``: ``(path, negated)`` for ``path is none`` / ``path is not none``."""
        self.source = source
        self.template = template
        self.lookup = lookup
        self.none_test = none_test

    def native(self, scope: Scope) -> Any:
        if self.lookup is not None:
            found, value = _lookup(scope, self.lookup)
            if found:
                return value
        if self.none_test is not None:
            path, negated = self.none_test
            found, value = _walk(scope, path)
            if found:
                # Jinja: a missing value is undefined, and undefined is not none.
                return (value is None) is not negated
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


def _walk(scope: Scope, path: tuple[str, ...]) -> tuple[bool, Any]:
    """Like ``_lookup``, but a missing key gives ``_MISSING`` (undefined) instead of None."""
    value: Any = scope
    for key in path:
        if type(value) is not dict:
            return False, None
        value = value.get(key, _MISSING)
        if value is _MISSING:
            return True, _MISSING
    return True, value


def _render_parts(scope: Scope, parts: TextParts) -> str | None:
    """The text, or None when a lookup meets something that is not a plain dict."""
    out: list[str] = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        found, value = _walk(scope, part)
        if not found:
            return None
        if value is _MISSING or value is None:
            continue  # undefined and None both render as ""
        out.append(value if type(value) is str else str(value))
    return "".join(out)


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
