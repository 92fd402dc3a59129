"""``end``: end the turn here; the session's next input starts the flow again."""

from __future__ import annotations

from flowhook.flows.nodes.base import Node, ParseContext
from flowhook.flows.run import TurnRun


class EndNode(Node):
    type_name = "end"

    __slots__ = ()

    @classmethod
    def parse(cls, ctx: ParseContext) -> EndNode:
        return cls(ctx.node_id, ctx.line)

    def execute(self, run: TurnRun) -> str | None:
        return None
