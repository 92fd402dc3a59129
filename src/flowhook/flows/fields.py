"""Reading one YAML mapping field by field, with a line number for every problem.

The loader works on PyYAML's *composed* nodes rather than plain Python values:
each node carries its position in the file, so a problem can say exactly where
it is. Readers never raise for a bad field; they record the problem and return
``None`` so that one run over a file reports all of its problems.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import yaml
from yaml.constructor import ConstructorError, SafeConstructor

from flowhook.flows.templates import TemplateCompiler, TemplateProblem
from flowhook.flows.values import Constant, DictValue, Expression, ListValue, Value

T = TypeVar("T")

_MERGE_TAG = "tag:yaml.org,2002:merge"

# Context keys that cannot be read as ``context.<key>``: Jinja looks up a dict's
# attributes before its items, so ``context.items`` is the method, not the value.
SHADOWED_CONTEXT_KEYS = frozenset(name for name in dir(dict) if not name.startswith("_"))


class ProblemLog:
    """The problems found in one file, each formatted as ``file:line: message``."""

    def __init__(self, file: str) -> None:
        self.file = file
        self._entries: list[tuple[int, str]] = []

    def add(self, line: int, message: str) -> None:
        self._entries.append((line, message))

    def __bool__(self) -> bool:
        return bool(self._entries)

    @property
    def problems(self) -> list[str]:
        """In file order (checks run in several passes; readers want top to bottom)."""
        ordered = sorted(self._entries, key=lambda entry: entry[0])
        return [f"{self.file}:{line}: {message}" for line, message in ordered]


@dataclass(frozen=True, slots=True)
class Target:
    """A reference from a node field (``next``, ``then``, ...) to another node."""

    field: str
    node_id: str
    line: int


def line_of(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def construct(node: yaml.Node) -> Any:
    """The plain Python value of a composed node (safe tags only)."""
    return SafeConstructor().construct_document(node)


def _type_hint(value: Any) -> str:
    if isinstance(value, bool):
        return " (quote it: YAML reads yes/no/on/off/true/false as booleans)"
    return ""


class FieldReader:
    """The fields of one YAML mapping; ``what`` prefixes messages (e.g. ``node 'greet'``)."""

    def __init__(
        self,
        mapping: yaml.MappingNode,
        log: ProblemLog,
        what: str = "",
        line: int | None = None,
    ) -> None:
        self.log = log
        self.what = what
        self.line = line if line is not None else line_of(mapping)
        self._fields: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        self._used: set[str] = set()
        own_pairs = [pair for pair in mapping.value if pair[0].tag != _MERGE_TAG]
        # Resolve ``<<: *anchor`` merge keys: PyYAML puts the merged pairs first.
        try:
            SafeConstructor().flatten_mapping(mapping)
        except ConstructorError as exc:
            self._add(line_of(mapping), f"bad merge key '<<': {exc.problem}")
            mapping.value = own_pairs
        merged_pairs = mapping.value[: len(mapping.value) - len(own_pairs)]
        for key_node, value_node in merged_pairs:
            key = construct(key_node) if isinstance(key_node, yaml.ScalarNode) else None
            if isinstance(key, str):
                self._fields[key] = (key_node, value_node)
        own_keys: set[str] = set()
        for key_node, value_node in own_pairs:
            key = construct(key_node) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                self._add(line_of(key_node), f"keys must be strings{_type_hint(key)}")
            elif key in own_keys:
                self._add(line_of(key_node), f"duplicate key '{key}'")
            else:
                own_keys.add(key)
                self._fields[key] = (key_node, value_node)  # overrides a merged value

    # -- basics -------------------------------------------------------------

    def _add(self, line: int, message: str) -> None:
        self.log.add(line, f"{self.what}: {message}" if self.what else message)

    def problem(self, message: str, field: str | None = None) -> None:
        self._add(self.line_of(field) if field else self.line, message)

    def problem_at(self, line: int, message: str) -> None:
        self._add(line, message)

    def has(self, field: str) -> bool:
        return field in self._fields

    def line_of(self, field: str) -> int:
        entry = self._fields.get(field)
        return line_of(entry[1]) if entry else self.line

    def entries(self) -> list[tuple[str, int, yaml.Node]]:
        """Every ``(key, key line, value node)``; marks all fields used."""
        self._used.update(self._fields)
        return [(key, line_of(k), v) for key, (k, v) in self._fields.items()]

    def node(self, field: str, *, required: bool = False) -> yaml.Node | None:
        entry = self._fields.get(field)
        if entry is None:
            if required:
                self.problem(f"missing required field '{field}'")
            return None
        self._used.add(field)
        return entry[1]

    def finish(self) -> None:
        """Report the fields nobody read: typos like ``txt:`` must not pass silently."""
        for key, (key_node, _) in self._fields.items():
            if key not in self._used:
                self._add(line_of(key_node), f"unknown field '{key}'")

    # -- typed fields ---------------------------------------------------------

    def raw(self, field: str, *, required: bool = False) -> Any:
        node = self.node(field, required=required)
        if node is None:
            return None
        try:
            return construct(node)
        except ConstructorError as exc:
            self._add(line_of(node), f"'{field}': {exc.problem}")
            return None

    def string(self, field: str, *, required: bool = False) -> str | None:
        value = self.raw(field, required=required)
        if value is None or isinstance(value, str):
            if value == "" and required:
                self.problem(f"'{field}' must not be empty", field)
                return None
            return value
        self.problem(f"'{field}' must be a string{_type_hint(value)}", field)
        return None

    def integer(self, field: str, *, minimum: int = 0) -> int | None:
        value = self.raw(field)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.problem(f"'{field}' must be a whole number >= {minimum}", field)
            return None
        return value

    def string_list(self, field: str, *, required: bool = False) -> list[str] | None:
        value = self.raw(field, required=required)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            hint = _type_hint(next((i for i in value if isinstance(i, bool)), None))
            self.problem(f"'{field}' must be a list of strings{hint}", field)
            return None
        return value

    def target(self, field: str, *, required: bool = False) -> Target | None:
        node_id = self.string(field, required=required)
        return None if node_id is None else Target(field, node_id, self.line_of(field))

    def context_key(self, field: str) -> str | None:
        key = self.string(field)
        if key is not None and not check_context_key(key):
            self.problem(context_key_message(key), field)
            return None
        return key

    def mapping(self, field: str, *, required: bool = False) -> FieldReader | None:
        node = self.node(field, required=required)
        if node is None:
            return None
        if not isinstance(node, yaml.MappingNode):
            self.problem(f"'{field}' must be a mapping", field)
            return None
        what = f"{self.what}: {field}" if self.what else field
        return FieldReader(node, self.log, what)

    # -- templates ------------------------------------------------------------

    def text(
        self, field: str, compiler: TemplateCompiler, *, required: bool = False
    ) -> Value | None:
        source = self.string(field, required=required)
        if source is None:
            return None
        return self._compile(field, self._fields[field][1], lambda: compiler.text(source))

    def text_node(self, field: str, node: yaml.Node, compiler: TemplateCompiler) -> Value | None:
        """A string node inside a field (e.g. an item of a list) compiled as a text."""
        try:
            source = construct(node)
        except ConstructorError as exc:
            self._add(line_of(node), f"'{field}': {exc.problem}")
            return None
        if not isinstance(source, str):
            self._add(line_of(node), f"'{field}': must be a string{_type_hint(source)}")
            return None
        return self._compile(field, node, lambda: compiler.text(source))

    def expression(
        self, field: str, compiler: TemplateCompiler, *, required: bool = False
    ) -> Expression | None:
        source = self.string(field, required=required)
        if source is None:
            return None
        return self._compile(field, self._fields[field][1], lambda: compiler.expression(source))

    def value(self, field: str, compiler: TemplateCompiler) -> Value | None:
        """A data value: strings are templates, mappings and lists are walked."""
        node = self.node(field)
        return None if node is None else self.compile_node(field, node, compiler)

    def compile_node(self, field: str, node: yaml.Node, compiler: TemplateCompiler) -> Value | None:
        if isinstance(node, yaml.MappingNode):
            reader = FieldReader(node, self.log, f"{self.what}: {field}" if self.what else field)
            items = []
            for key, _, child in reader.entries():
                value = self.compile_node(field, child, compiler)
                if value is not None:
                    items.append((key, value))
            return DictValue(tuple(items))
        if isinstance(node, yaml.SequenceNode):
            values = [self.compile_node(field, child, compiler) for child in node.value]
            return ListValue(tuple(v for v in values if v is not None))
        try:
            scalar = construct(node)
        except ConstructorError as exc:
            self._add(line_of(node), f"'{field}': {exc.problem}")
            return None
        if isinstance(scalar, str):
            return self._compile(field, node, lambda: compiler.value_string(scalar))
        if scalar is None or isinstance(scalar, bool | int | float):
            return Constant(scalar)
        self._add(line_of(node), f"'{field}': a {type(scalar).__name__} is not JSON data")
        return None

    def _compile(self, field: str, node: yaml.Node, compile_it: Callable[[], T]) -> T | None:
        try:
            result = compile_it()
        except TemplateProblem as exc:
            # Block scalars (| and >) start on the line after their indicator.
            first = line_of(node) + (1 if getattr(node, "style", None) in ("|", ">") else 0)
            self._add(first + exc.line_offset, f"'{field}': {exc.message}")
            return None
        return result


def check_context_key(key: str) -> bool:
    return bool(key) and key not in SHADOWED_CONTEXT_KEYS


def context_key_message(key: str) -> str:
    if not key:
        return "context keys must not be empty"
    return (
        f"context key '{key}' is the name of a dict method, so context.{key} would not "
        "read it; choose another name"
    )
