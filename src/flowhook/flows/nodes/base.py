"""What every node type provides: parse its fields, name its targets, execute.

A node type is one class registered under its ``type`` name (see
``flowhook.flows.nodes.NodeTypes``). Parsing happens once at load time and
compiles every template; ``execute`` runs in the hot path and returns the id of
the next node, or ``None`` to end the turn.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

from flowhook.flows.fields import FieldReader, Target
from flowhook.flows.run import TurnRun
from flowhook.flows.templates import TemplateCompiler


@dataclass(frozen=True, slots=True)
class ParseContext:
    """Everything a node type needs to parse one node of a flow file.

    ``intents`` names the intents the flow declares; ``flow_file`` is the path
    of the flow file (None for built-ins), for nodes that resolve files next to it.
    """

    node_id: str
    line: int
    fields: FieldReader
    compiler: TemplateCompiler
    intents: frozenset[str] = frozenset()
    flow_file: str | None = None


@dataclass(frozen=True, slots=True)
class FlowRef:
    """A reference from a node to another flow (``goto``, ``execute_flow``).

    ``node`` None means the flow's start node. Checked once all flows are loaded.
    """

    flow: str
    node: str | None
    line: int


class Node(ABC):
    """One node of a flow graph."""

    type_name: ClassVar[str]
    # Nodes that must await (HTTP calls, LLMs) set this and override
    # ``execute_async``; the engine only awaits those, so plain nodes stay cheap.
    is_async: ClassVar[bool] = False
    # Nodes that read the conversation's transcript (``llm``) set this; the
    # engine keeps a transcript in the session state only when some node does.
    uses_transcript: ClassVar[bool] = False

    __slots__ = ("line", "node_id")

    def __init__(self, node_id: str, line: int) -> None:
        self.node_id = node_id
        self.line = line

    @classmethod
    @abstractmethod
    def parse(cls, ctx: ParseContext) -> Node:
        """Read and compile the node's fields; report problems through ``ctx.fields``."""

    def targets(self) -> Iterator[Target]:
        """The nodes this node can continue with (checked to exist, used for reachability)."""
        return iter(())

    def flow_refs(self) -> Iterator[FlowRef]:
        """The other flows this node continues in (checked to exist after loading)."""
        return iter(())

    @abstractmethod
    def execute(self, run: TurnRun) -> str | None:
        """Run the node; return the next node id, or ``None`` to end the turn."""

    async def execute_async(self, run: TurnRun) -> str | None:
        return self.execute(run)


class AwaitsAnswer(ABC):
    """A node a session can wait at; the next input of the session resumes it."""

    __slots__ = ()

    @abstractmethod
    def resume(self, run: TurnRun) -> str | None:
        """Handle the input as the answer; return the next node id or ``None``."""


def optional_targets(*targets: Target | None) -> Iterator[Target]:
    return (target for target in targets if target is not None)


def target_id(target: Target | None) -> str | None:
    return None if target is None else target.node_id
