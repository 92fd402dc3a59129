"""``handover``: mark the session as handed over to a human agent.

The node records ``{"at", "flow", "node", "reason", "data"}`` in the session
state (``SessionState.handover``); what a handover provider does with it is
not the flow's business. An optional ``text``/``data`` output is sent first
(e.g. "Connecting you to an agent"). The session stays marked until a
``reset`` or until it expires; the flow itself keeps running as before.
"""

from __future__ import annotations

from collections.abc import Iterator

from flowhook.flows.fields import Target
from flowhook.flows.nodes.base import Node, ParseContext, optional_targets, target_id
from flowhook.flows.nodes.output import OutputTemplate, read_output
from flowhook.flows.run import TurnRun
from flowhook.flows.values import Value


class HandoverNode(Node):
    type_name = "handover"

    __slots__ = ("next", "next_id", "output", "reason")

    def __init__(
        self,
        node_id: str,
        line: int,
        output: OutputTemplate | None,
        reason: Value | None,
        next: Target | None,
    ) -> None:
        super().__init__(node_id, line)
        self.output = output
        self.reason = reason
        self.next = next
        self.next_id = target_id(next)

    @classmethod
    def parse(cls, ctx: ParseContext) -> HandoverNode:
        fields = ctx.fields
        output = (
            read_output(fields, ctx.compiler) if fields.has("text") or fields.has("data") else None
        )
        reason = fields.text("reason", ctx.compiler)
        return cls(ctx.node_id, ctx.line, output, reason, fields.target("next"))

    def targets(self) -> Iterator[Target]:
        return optional_targets(self.next)

    def execute(self, run: TurnRun) -> str | None:
        output = self.output.render(run.scope) if self.output is not None else None
        if output is not None:
            run.emit(output)
        run.handover = {
            "at": run.now,
            "flow": run.flow_name,
            "node": self.node_id,
            "reason": self.reason.evaluate(run.scope) if self.reason is not None else None,
            "data": output.data if output is not None else {},
        }
        return self.next_id
