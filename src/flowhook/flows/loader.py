"""Loading flow files: YAML text -> validated, compiled ``LoadedFlow`` objects.

Validation never stops at the first problem: every problem of every file is
reported as ``file:line: message`` (unknown node types and fields, missing or
malformed fields, template syntax, dangling references, unreachable nodes,
duplicate flow names), so one run of ``flowhook flows validate`` shows them all.
"""

from __future__ import annotations

import difflib
import re
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from flowhook.flows.fields import FieldReader, ProblemLog, Target, line_of
from flowhook.flows.intents import read_nlu
from flowhook.flows.model import LoadedFlow
from flowhook.flows.nodes import DEFAULT_NODE_TYPES, Node, NodeTypes, ParseContext
from flowhook.flows.nodes.base import FlowRef
from flowhook.flows.templates import TemplateCompiler

FLOW_SUFFIXES = (".yaml", ".yml")
# Flow names show up in endpoint configs, URLs and logs: keep them plain.
FLOW_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True, slots=True)
class FlowSource:
    """The text of one flow file; ``label`` names it in problems."""

    label: str
    stem: str
    text: str
    path: str | None = None  # the file on disk; None for built-ins


@dataclass(frozen=True, slots=True)
class ParsedFile:
    flow: LoadedFlow | None  # None when the file has problems
    name: str | None
    name_line: int
    problems: list[str]
    refs: tuple[tuple[str, FlowRef], ...] = ()  # (node id, reference to another flow)


def builtin_sources() -> list[FlowSource]:
    """The flows shipped inside the package (``flowhook/flows/builtin``)."""
    folder = resources.files("flowhook.flows").joinpath("builtin")
    entries = sorted(
        (entry for entry in folder.iterdir() if entry.name.endswith(FLOW_SUFFIXES)),
        key=lambda entry: entry.name,
    )
    return [
        FlowSource(
            f"<builtin>/{entry.name}", entry.name.rsplit(".", 1)[0], entry.read_text("utf-8")
        )
        for entry in entries
    ]


def path_sources(path: Path, problems: list[str]) -> list[FlowSource]:
    """The flow files of a directory (not recursive), or one file.

    Files that cannot be read are reported in ``problems``.
    """
    files = (
        sorted(p for p in path.iterdir() if p.is_file() and p.suffix in FLOW_SUFFIXES)
        if path.is_dir()
        else [path]
    )
    sources = []
    for file in files:
        try:
            text = file.read_text("utf-8")
            sources.append(FlowSource(str(file), file.stem, text, str(file.resolve())))
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{file}:1: cannot read the file: {exc}")
    return sources


def load_sources(
    sources: Iterable[FlowSource], node_types: NodeTypes = DEFAULT_NODE_TYPES
) -> tuple[dict[str, LoadedFlow], list[str]]:
    """Parse every source; returns the valid flows by name and all problems."""
    compiler = TemplateCompiler()
    flows: dict[str, LoadedFlow] = {}
    defined_in: dict[str, str] = {}
    problems: list[str] = []
    references: list[tuple[str, str, FlowRef]] = []
    for source in sources:
        parsed = parse_flow(source, node_types, compiler)
        problems.extend(parsed.problems)
        references.extend((source.label, node_id, ref) for node_id, ref in parsed.refs)
        if parsed.name is None:
            continue
        if parsed.name in defined_in:
            problems.append(
                f"{source.label}:{parsed.name_line}: flow name '{parsed.name}' is already "
                f"used by {defined_in[parsed.name]}"
            )
            continue
        defined_in[parsed.name] = source.label
        if parsed.flow is not None:
            flows[parsed.name] = parsed.flow
    problems += _check_flow_references(references, defined_in, flows)
    if problems:
        # A flow referring to a broken flow would fail at run time: load none.
        return {}, problems
    return flows, problems


def _check_flow_references(
    references: Iterable[tuple[str, str, FlowRef]],
    defined_in: Mapping[str, str],
    flows: Mapping[str, LoadedFlow],
) -> list[str]:
    problems = []
    for label, node_id, ref in references:
        prefix = f"{label}:{ref.line}: node '{node_id}': "
        if ref.flow not in defined_in:
            close = difflib.get_close_matches(ref.flow, list(defined_in), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append(f"{prefix}flow '{ref.flow}' does not exist{hint}")
            continue
        target = flows.get(ref.flow)
        if ref.node is not None and target is not None and ref.node not in target.nodes:
            problems.append(f"{prefix}flow '{ref.flow}' has no node '{ref.node}'")
    return problems


def validate_path(path: Path) -> list[str]:
    """Every problem of a flow file or directory (with the built-ins it must coexist with)."""
    if not path.exists():
        return [f"{path}: no such file or directory"]
    problems: list[str] = []
    sources = [*builtin_sources(), *path_sources(path, problems)]
    return problems + load_sources(sources)[1]


def parse_flow(source: FlowSource, node_types: NodeTypes, compiler: TemplateCompiler) -> ParsedFile:
    log = ProblemLog(source.label)
    root = _compose(source, log)
    if root is None:
        return ParsedFile(None, None, 1, log.problems)
    top = FieldReader(root, log)
    name = top.string("name") or source.stem
    name_line = top.line_of("name") if top.has("name") else 1
    if not FLOW_NAME.fullmatch(name):
        log.add(name_line, f"flow name '{name}' may only use letters, digits, '_', '.', '-'")
    description = top.string("description")
    top.node("$schema")  # editors' schema hint, allowed and ignored
    start = top.target("start")
    nlu = read_nlu(top)
    nodes_fields = top.mapping("nodes", required=True)
    top.finish()
    if nodes_fields is None:
        return ParsedFile(None, name, name_line, log.problems)

    intents = frozenset(intent.name for intent in nlu.intents) if nlu else frozenset()
    compiler.names_used = set()
    nodes, node_lines = _parse_nodes(nodes_fields, log, node_types, compiler, intents, source.path)
    refs = tuple((node.node_id, ref) for node in nodes.values() for ref in node.flow_refs())
    if not node_lines:
        nodes_fields.problem("a flow needs at least one node")
    start_id = start.node_id if start else next(iter(node_lines), None)
    _check_references(nodes, node_lines, start, log)
    if start_id in nodes:
        _check_reachable(nodes, set(node_lines) - set(nodes), node_lines, start_id, log)
    if log or start_id is None:
        return ParsedFile(None, name, name_line, log.problems, refs)
    flow = LoadedFlow(
        name,
        start_id,
        nodes,
        source.label,
        description,
        nlu,
        template_names=frozenset(compiler.names_used),
    )
    return ParsedFile(flow, name, name_line, [], refs)


def _compose(source: FlowSource, log: ProblemLog) -> yaml.MappingNode | None:
    try:
        root = yaml.compose(source.text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        log.add(*_yaml_error(exc))
        return None
    except yaml.YAMLError as exc:
        log.add(1, f"invalid YAML: {exc}")
        return None
    if root is None:
        log.add(1, "the file is empty; a flow needs 'nodes'")
        return None
    if not isinstance(root, yaml.MappingNode):
        log.add(line_of(root), "a flow file must be a mapping with 'nodes'")
        return None
    return root


def _yaml_error(exc: yaml.MarkedYAMLError) -> tuple[int, str]:
    """The line a person has to fix, and what is wrong there. A construct left open
    (a quote, a bracket) is reported where it was opened, not at the end of the file."""
    problem = exc.problem or "not valid"
    mark = exc.problem_mark or exc.context_mark
    if exc.context_mark is not None and "end of stream" in problem:
        mark = exc.context_mark
    where = f" ({exc.context})" if exc.context else ""
    return (mark.line + 1 if mark else 1), f"invalid YAML: {problem}{where}"


def _parse_nodes(
    nodes_fields: FieldReader,
    log: ProblemLog,
    node_types: NodeTypes,
    compiler: TemplateCompiler,
    intents: frozenset[str] = frozenset(),
    flow_file: str | None = None,
) -> tuple[dict[str, Node], dict[str, int]]:
    """Returns the parsed nodes and the line of every node id.

    Nodes whose type is unknown still count as existing (a reference to them is
    not dangling), but they are not parsed: their targets are unknown.
    """
    nodes: dict[str, Node] = {}
    node_lines: dict[str, int] = {}
    for node_id, line, value in nodes_fields.entries():
        node_lines[node_id] = line
        if not isinstance(value, yaml.MappingNode):
            log.add(line, f"node '{node_id}': must be a mapping with a 'type'")
            continue
        fields = FieldReader(value, log, f"node '{node_id}'", line=line)
        type_name = fields.string("type", required=True)
        node_class = node_types.get(type_name) if type_name else None
        if node_class is None:
            if type_name:
                known = ", ".join(node_types.names())
                fields.problem(f"unknown node type '{type_name}' (known: {known})", "type")
            continue
        context = ParseContext(node_id, line, fields, compiler, intents, flow_file)
        nodes[node_id] = node_class.parse(context)
        fields.finish()
    return nodes, node_lines


def _check_references(
    nodes: Mapping[str, Node], node_lines: Mapping[str, int], start: Target | None, log: ProblemLog
) -> None:
    def missing(target: Target, owner: str) -> None:
        close = difflib.get_close_matches(target.node_id, list(node_lines), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        log.add(target.line, f"{owner}{target.field} '{target.node_id}' does not exist{hint}")

    if start is not None and start.node_id not in node_lines:
        missing(Target("start node", start.node_id, start.line), "")
    for node in nodes.values():
        for target in node.targets():
            if target.node_id not in node_lines:
                missing(target, f"node '{node.node_id}': ")


def _check_reachable(
    nodes: Mapping[str, Node],
    broken: set[str],
    node_lines: Mapping[str, int],
    start_id: str,
    log: ProblemLog,
) -> None:
    """Report nodes the start node never leads to. A broken node (unknown type, not a
    mapping) has unknown targets: when one is reached, anything might be reached through
    it, so nothing is reported; when none is, the verdict is sound and is given."""
    reached = {start_id}
    queue = deque([start_id])
    while queue:
        node = nodes.get(queue.popleft())
        for target in node.targets() if node else ():
            if target.node_id not in reached:
                reached.add(target.node_id)
                queue.append(target.node_id)
    if reached & broken:
        return
    for node_id, line in node_lines.items():
        if node_id not in reached:
            log.add(line, f"node '{node_id}' is unreachable from the start node '{start_id}'")
