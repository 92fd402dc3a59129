"""The set of loaded flows an engine runs: the built-ins plus a directory of flow files."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from flowhook.flows.errors import FlowValidationError
from flowhook.flows.loader import builtin_sources, load_sources, path_sources
from flowhook.flows.model import LoadedFlow
from flowhook.flows.nodes import DEFAULT_NODE_TYPES, NodeTypes


class FlowRegistry:
    """Loaded, validated flows by name. Immutable: reloading builds a new registry."""

    def __init__(self, flows: Mapping[str, LoadedFlow]) -> None:
        self._flows = dict(flows)

    @classmethod
    def load(
        cls, flows_dir: Path | None, *, node_types: NodeTypes = DEFAULT_NODE_TYPES
    ) -> FlowRegistry:
        """Load the built-in flows and the ``*.yaml``/``*.yml`` files of ``flows_dir``.

        A missing ``flows_dir`` (or ``None``) gives only the built-ins; a file path
        loads that one file. Raises ``FlowValidationError`` listing every problem.
        """
        problems: list[str] = []
        sources = builtin_sources()
        if flows_dir is not None and flows_dir.exists():
            sources += path_sources(flows_dir, problems)
        flows, load_problems = load_sources(sources, node_types)
        problems += load_problems
        if problems:
            raise FlowValidationError(problems)
        return cls(flows)

    def get(self, name: str) -> LoadedFlow | None:
        """The flow called ``name``, or ``None`` (like ``dict.get``)."""
        return self._flows.get(name)

    def __getitem__(self, name: str) -> LoadedFlow:
        return self._flows[name]

    def names(self) -> list[str]:
        return sorted(self._flows)

    def __contains__(self, name: object) -> bool:
        return name in self._flows

    def __len__(self) -> int:
        return len(self._flows)
