"""The flows part of a snapshot: the YAML text of every flow file in the flows dir.

Built-in flows ship with flowhook and are never exported. On import the incoming files
are checked with the flow loader together with the built-ins and the files the flows
dir keeps, exactly as the server would load them, before anything is written.

A snapshot carries flow files only, never Python: an imported flow's ``code`` nodes can
name functions in ``.py`` files the flows dir already has, and ``module:function``
names only when the server allows them (``code_allow_modules``), exactly as for flows
the operator puts there.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from flowhook.flows.loader import (
    FlowSource,
    builtin_sources,
    load_sources,
    parse_flow,
    path_sources,
)
from flowhook.flows.nodes import DEFAULT_NODE_TYPES
from flowhook.flows.nodes.code import module_code_problems
from flowhook.flows.templates import TemplateCompiler
from flowhook.snapshots.errors import SnapshotInvalid
from flowhook.snapshots.format import FLOW_FILE, SnapshotFlow
from flowhook.snapshots.models import FlowImported, OnConflict

SNAPSHOT_LABEL = "snapshot:"


def export_flows(flows_dir: Path) -> list[SnapshotFlow]:
    """Every flow file of ``flows_dir`` (none when it does not exist), by file name."""
    if not flows_dir.exists():
        return []
    problems: list[str] = []
    sources = path_sources(flows_dir, problems)
    if problems:
        raise SnapshotInvalid(problems)
    return [SnapshotFlow(file=Path(s.label).name, text=s.text) for s in sources]


@dataclass
class FlowPlan:
    """What an import does to the flows dir, and the flow names there afterwards."""

    writes: dict[str, str] = field(default_factory=dict)  # file name -> text
    results: list[FlowImported] = field(default_factory=list)
    names: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)


def plan_flows(
    flows_dir: Path,
    incoming: list[SnapshotFlow],
    on_conflict: OnConflict,
    *,
    allow_modules: bool = False,
) -> FlowPlan:
    plan = FlowPlan()
    if flows_dir.exists() and not flows_dir.is_dir():
        plan.problems.append(f"the flows dir {flows_dir} is a file: flows cannot be imported")
        return plan
    existing: dict[str, FlowSource] = {}
    if flows_dir.is_dir():
        existing = {Path(s.label).name: s for s in path_sources(flows_dir, plan.problems)}
    seen: set[str] = set()
    for flow in incoming:
        if not FLOW_FILE.fullmatch(flow.file):
            plan.problems.append(
                f"flow file name {flow.file!r} is not allowed "
                "(a plain name ending in .yaml or .yml: letters, digits, '_', '.', '-')"
            )
            continue
        if flow.file in seen:
            plan.problems.append(f"flow file {flow.file!r} is in the snapshot twice")
            continue
        seen.add(flow.file)
        current = existing.get(flow.file)
        if current is None:
            plan.writes[flow.file] = flow.text
            plan.results.append(FlowImported(file=flow.file, action="created"))
        elif current.text == flow.text:
            plan.results.append(FlowImported(file=flow.file, action="unchanged"))
        elif on_conflict == "fail":
            plan.problems.append(
                f"flow file {flow.file!r} already exists in {flows_dir} with other content "
                "(choose --on-conflict skip or replace)"
            )
        elif on_conflict == "skip":
            plan.results.append(FlowImported(file=flow.file, action="skipped"))
        else:
            plan.writes[flow.file] = flow.text
            plan.results.append(FlowImported(file=flow.file, action="replaced"))

    # Check the flows dir as it would be after the import, as the server loads it.
    target = flows_dir.resolve()
    sources = builtin_sources()
    sources += [s for name, s in existing.items() if name not in plan.writes]
    sources += [
        FlowSource(
            f"{SNAPSHOT_LABEL}{name}",
            name.rsplit(".", 1)[0],
            text,
            str(target / name),  # code nodes' helper files resolve next to it
        )
        for name, text in plan.writes.items()
    ]
    _flows, problems = load_sources(sources, DEFAULT_NODE_TYPES)
    plan.problems += problems
    compiler = TemplateCompiler()
    for source in sources:
        parsed = parse_flow(source, DEFAULT_NODE_TYPES, compiler)
        if parsed.name is not None:
            plan.names.add(parsed.name)
        if parsed.flow is not None and not allow_modules:
            plan.problems += module_code_problems(source.label, parsed.flow.nodes.values())
    return plan


def write_flows(flows_dir: Path, writes: dict[str, str]) -> None:
    """Write each file atomically (a temporary file renamed over it)."""
    if not writes:
        return
    flows_dir.mkdir(parents=True, exist_ok=True)
    for name, text in writes.items():
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=flows_dir)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, flows_dir / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
