"""Node types: the registry mapping a node's ``type`` to the class that runs it.

Adding a node type means writing one ``Node`` subclass in its own module and
registering it, either here in ``DEFAULT_NODE_TYPES`` or per registry with
``NodeTypes.with_types`` (so tests and extensions need no global state).
"""

from __future__ import annotations

from collections.abc import Iterable

from flowhook.flows.nodes.base import AwaitsAnswer, FlowRef, Node, ParseContext
from flowhook.flows.nodes.branch import IfNode
from flowhook.flows.nodes.code import CodeNode
from flowhook.flows.nodes.end import EndNode
from flowhook.flows.nodes.goto import ExecuteFlowNode, GotoNode
from flowhook.flows.nodes.handover import HandoverNode
from flowhook.flows.nodes.http import HttpNode
from flowhook.flows.nodes.llm import LlmNode
from flowhook.flows.nodes.question import QuestionNode
from flowhook.flows.nodes.reset import ResetNode
from flowhook.flows.nodes.say import SayNode
from flowhook.flows.nodes.set_context import SetNode
from flowhook.flows.nodes.switch import SwitchNode

__all__ = [
    "DEFAULT_NODE_TYPES",
    "AwaitsAnswer",
    "CodeNode",
    "EndNode",
    "ExecuteFlowNode",
    "FlowRef",
    "GotoNode",
    "HandoverNode",
    "HttpNode",
    "IfNode",
    "LlmNode",
    "Node",
    "NodeTypes",
    "ParseContext",
    "QuestionNode",
    "ResetNode",
    "SayNode",
    "SetNode",
    "SwitchNode",
]


class NodeTypes:
    """An immutable mapping of ``type`` names to node classes."""

    def __init__(self, node_classes: Iterable[type[Node]]) -> None:
        self._by_name = {node_class.type_name: node_class for node_class in node_classes}

    def get(self, type_name: str) -> type[Node] | None:
        return self._by_name.get(type_name)

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def with_types(self, *node_classes: type[Node]) -> NodeTypes:
        """A copy with more (or replaced) node types."""
        return NodeTypes([*self._by_name.values(), *node_classes])


DEFAULT_NODE_TYPES = NodeTypes(
    [
        SayNode,
        QuestionNode,
        IfNode,
        SwitchNode,
        SetNode,
        CodeNode,
        HttpNode,
        LlmNode,
        GotoNode,
        ExecuteFlowNode,
        HandoverNode,
        EndNode,
        ResetNode,
    ]
)
