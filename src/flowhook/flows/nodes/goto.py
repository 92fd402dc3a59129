"""``goto`` and ``execute_flow``: continue elsewhere, in this flow or another one.

``goto`` continues at ``node`` (of this flow, or of ``flow``) and never comes
back. ``execute_flow`` runs ``flow`` (from ``node``, default its start) as a
sub-flow: when the sub-flow ends (a node without ``next``), the turn goes on
at this node's ``next``. A sub-flow may ask questions: the session then waits
inside it and the return point is kept in the session state until it ends.
``end`` inside a sub-flow ends the whole turn and forgets the return points.
"""

from __future__ import annotations

from collections.abc import Iterator

from flowhook.flows.errors import FlowRuntimeError
from flowhook.flows.fields import Target
from flowhook.flows.nodes.base import FlowRef, Node, ParseContext, optional_targets, target_id
from flowhook.flows.run import Frame, TurnRun

MAX_FLOW_DEPTH = 16


class GotoNode(Node):
    type_name = "goto"

    __slots__ = ("flow", "flow_ref", "node", "node_target")

    def __init__(
        self, node_id: str, line: int, flow: str | None, node: str | None, node_line: int
    ) -> None:
        super().__init__(node_id, line)
        self.flow = flow
        self.node = node
        self.node_target = Target("node", node, node_line) if flow is None and node else None
        self.flow_ref = FlowRef(flow, node, line) if flow is not None else None

    @classmethod
    def parse(cls, ctx: ParseContext) -> GotoNode:
        fields = ctx.fields
        flow = fields.string("flow")
        node = fields.string("node")
        if flow is None and node is None and not fields.has("flow") and not fields.has("node"):
            fields.problem("needs 'node' (in this flow) and/or 'flow' (another flow)")
        return cls(ctx.node_id, ctx.line, flow, node, fields.line_of("node"))

    def targets(self) -> Iterator[Target]:
        return optional_targets(self.node_target)

    def flow_refs(self) -> Iterator[FlowRef]:
        return iter(() if self.flow_ref is None else (self.flow_ref,))

    def execute(self, run: TurnRun) -> str | None:
        if self.flow is None:
            return self.node
        run.goto_flow(self.flow, self.node)
        return None


class ExecuteFlowNode(Node):
    type_name = "execute_flow"

    __slots__ = ("flow", "next", "next_id", "node")

    def __init__(
        self, node_id: str, line: int, flow: str, node: str | None, next: Target | None
    ) -> None:
        super().__init__(node_id, line)
        self.flow = flow
        self.node = node
        self.next = next
        self.next_id = target_id(next)

    @classmethod
    def parse(cls, ctx: ParseContext) -> ExecuteFlowNode:
        fields = ctx.fields
        flow = fields.string("flow", required=True) or ""
        node = fields.string("node")
        return cls(ctx.node_id, ctx.line, flow, node, fields.target("next"))

    def targets(self) -> Iterator[Target]:
        return optional_targets(self.next)

    def flow_refs(self) -> Iterator[FlowRef]:
        yield FlowRef(self.flow, self.node, self.line)

    def execute(self, run: TurnRun) -> str | None:
        if len(run.stack) >= MAX_FLOW_DEPTH:
            raise FlowRuntimeError(f"execute_flow nested more than {MAX_FLOW_DEPTH} deep")
        run.stack.append(Frame(run.flow_name, self.next_id))
        run.goto_flow(self.flow, self.node)
        return None
