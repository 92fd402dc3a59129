"""``reset``: clear the session (context, return points, transcript, handover).

The user's profile is kept: it belongs to the user, not to the session. With
``next`` the turn goes on there with the cleared session; without, it ends.
"""

from __future__ import annotations

from collections.abc import Iterator

from flowhook.flows.fields import Target
from flowhook.flows.nodes.base import Node, ParseContext, optional_targets, target_id
from flowhook.flows.run import TurnRun


class ResetNode(Node):
    type_name = "reset"

    __slots__ = ("next", "next_id")

    def __init__(self, node_id: str, line: int, next: Target | None) -> None:
        super().__init__(node_id, line)
        self.next = next
        self.next_id = target_id(next)

    @classmethod
    def parse(cls, ctx: ParseContext) -> ResetNode:
        return cls(ctx.node_id, ctx.line, ctx.fields.target("next"))

    def targets(self) -> Iterator[Target]:
        return optional_targets(self.next)

    def execute(self, run: TurnRun) -> str | None:
        run.context.clear()
        run.stack.clear()
        if run.transcript is not None:
            run.transcript.clear()
        run.handover = None
        run.was_reset = True
        if self.next_id is None:
            run.end_turn()
        return self.next_id
