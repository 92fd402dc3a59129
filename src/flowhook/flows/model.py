"""A loaded, validated flow: its nodes, compiled, ready to run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from flowhook.flows.nodes import Node
from flowhook.nlu import IntentModel


@dataclass(frozen=True, slots=True)
class LoadedFlow:
    """Implements the ``Flow`` protocol of ``flowhook.flows.types``.

    ``source`` is the file the flow came from (``<builtin>/echo.yaml`` for built-ins).
    ``nlu`` matches inputs against the flow's ``intents`` and ``slots`` (None: none declared).
    """

    name: str
    start: str
    nodes: Mapping[str, Node]
    source: str
    description: str | None = None
    nlu: IntentModel | None = None
    # The variables the flow's own templates and expressions refer to (``input``,
    # ``context``, ``profile``, ``config``); None: not known, so taken as all of them.
    template_names: frozenset[str] | None = None
