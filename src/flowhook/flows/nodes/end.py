"""``end``: end the turn here, also inside a sub-flow (``execute_flow`` does not come back).

The session's next input starts the flow again.
"""

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
        run.end_turn()
        return None
