"""The template sandbox keeps its own limits, bounds output and time, and refuses a
corpus of known server-side template injection payloads."""

from __future__ import annotations

import time
from typing import Any

import pytest
from jinja2 import TemplateError

from flowhook.flows.templates import TemplateCompiler, TemplateProblem, make_scope
from flowhook.flows.types import TurnInput


def scope(data: dict[str, Any] | None = None) -> dict[str, Any]:
    turn = TurnInput("u1", "s1", "t1", text="hi", data=data or {})
    return make_scope(turn, {"name": "Ada"}, {}, {"api": "https://example.com"})


def render(source: str, data: dict[str, Any] | None = None) -> Any:
    return TemplateCompiler().value_string(source).evaluate(scope(data))


@pytest.mark.parametrize("n", [100_001, 2_000_000])
def test_range_keeps_the_sandbox_limit(n: int) -> None:
    """``range`` is the sandbox's (at most 100,000 items), not Python's: a chat user's
    number cannot make a template build a list of millions."""
    started = time.monotonic()
    with pytest.raises((TemplateError, OverflowError)):
        render("{{ range(input.data.n)|list|length }}", {"n": n})
    assert time.monotonic() - started < 1


def test_range_within_the_limit_still_works() -> None:
    """Ordinary ranges and loops are unaffected."""
    assert render("{{ range(3)|list }}") == [0, 1, 2]
    assert render("{% for i in range(3) %}{{ i }}{% endfor %}") == "012"


@pytest.mark.parametrize(
    "source",
    [
        "{% for i in range(100000) %}0123456789{% endfor %}",  # 1,000,000 characters
        "{{ 'x' * 10000000 }}",
        "{{ input.data.s * input.data.n }}",
        "{{ 'x'.center(100000000) }}",
        "{{ 'x'|center(100000000) }}",
        "{{ 'x'|indent(100000000) }}",
        "{{ '%0100000000d' % 1 }}",
        "{{ '{:>100000000}'.format(1) }}",
        "{{ '%0100000000d'|format(1) }}",
        "{{ [1] * 100000000 }}",
        "{{ 10 ** (10 ** 8) }}",
        "{{ range(10)|slice(100000000)|list }}",
    ],
)
def test_output_size_is_bounded(source: str) -> None:
    """Whatever the route (loops, repetition, widths, exponents), a rendering cannot
    build more than the output limit: it fails at once instead."""
    started = time.monotonic()
    with pytest.raises(TemplateError):
        render(source, {"s": "ab", "n": 50_000_000})
    assert time.monotonic() - started < 1.5


def test_rendering_time_is_bounded() -> None:
    """Nested loops that produce nothing still stop after the time limit (1 s)."""
    started = time.monotonic()
    with pytest.raises(TemplateError, match="longer than"):
        render("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}")
    assert time.monotonic() - started < 3


# Known server-side template injection payloads (Jinja2), as published in SSTI
# cheat sheets, adapted to the variables flow templates see.
SSTI_CORPUS = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ''.__class__.__mro__[2].__subclasses__()[40]('/etc/passwd').read() }}",
    "{{ [].__class__.__base__.__subclasses__() }}",
    "{{ ().__class__.__bases__[0].__subclasses__() }}",
    "{{ (1).__class__.__subclasses__() }}",
    "{{ config.__class__.__init__.__globals__['os'].popen('id').read() }}",
    "{{ config.items()[0].__class__ }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__.os.popen('id').read() }}",
    "{{ namespace.__init__.__globals__.os.popen('id').read() }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ lipsum.__globals__.__builtins__.__import__('os').popen('id').read() }}",
    "{{ range.__globals__ }}",
    "{{ dict.__base__.__subclasses__() }}",
    "{{ dict.mro() }}",
    "{{ self._TemplateReference__context.cycler.__init__.__globals__.os }}",
    "{{ self.__init__.__globals__.__builtins__ }}",
    "{{ request.application.__globals__.__builtins__.__import__('os') }}",
    "{{ url_for.__globals__.os.popen('id').read() }}",
    "{{ get_flashed_messages.__globals__.__builtins__ }}",
    "{{ ''|attr('__class__')|attr('__mro__') }}",
    "{{ ''|attr('\\x5f\\x5fclass\\x5f\\x5f') }}",
    "{{ input|attr('__class__') }}",
    "{{ input.__class__.__init__.__globals__ }}",
    "{{ input.text.__class__.__mro__ }}",
    "{{ input.text.format.__globals__ }}",
    "{{ input.text.upper.__self__.__class__ }}",
    "{{ '{0.__class__.__mro__}'.format(input.text) }}",
    "{{ '{0.__init__.__globals__}'.format(cycler) }}",
    "{{ '%s'|format(input.__class__) }}",
    "{{ input.data.update({'x': 1}) }}",
    "{{ context.update({'admin': true}) }}",
    "{{ context.clear() }}",
    "{{ profile.setdefault('role', 'admin') }}",
    "{{ input.data.pop('x', None) }}",
    "{% set x = namespace() %}{% set x.__class__ = 1 %}",
    "{{ namespace(__class__=1).__class__.__mro__ }}",
    "{{ cycler(1).__class__.__init__ }}",
    "{{ joiner().__call__.__globals__ }}",
    "{% for c in ''.__class__.__mro__[1].__subclasses__() %}{{ c }}{% endfor %}",
    "{% import 'os' as os %}{{ os }}",
    "{% include '/etc/passwd' %}",
    "{% extends '/etc/passwd' %}",
    "{% from 'os' import system %}{{ system('id') }}",
    "{{ input.data.payload }}",  # data is data: the string below is never evaluated
]
_LEAKS = ("<class", "uid=", "root:", "<function", "<module", "<built-in", "__builtins__")


@pytest.mark.parametrize("payload", SSTI_CORPUS)
def test_ssti_corpus_is_refused(payload: str) -> None:
    """Each payload is refused when the flow loads (unknown variable, syntax) or when it
    renders (sandbox error), or renders nothing that reveals an object or runs a command;
    and a chat user's text is never evaluated as a template."""
    data = {"payload": "{{ ''.__class__.__mro__ }}", "x": 1}
    try:
        out = TemplateCompiler().text(payload).evaluate(scope(data))
    except (TemplateProblem, TemplateError):
        return
    assert not any(leak in str(out) for leak in _LEAKS), out
    if "input.data.payload" in payload:
        assert out == data["payload"]  # shown as text, not run
