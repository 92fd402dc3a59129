"""``say``: send one output (text and/or data), then continue with ``next``."""

from __future__ import annotations

from collections.abc import Iterator

from flowhook.flows.fields import Target
from flowhook.flows.nodes.base import Node, ParseContext, optional_targets, target_id
from flowhook.flows.nodes.output import OutputTemplate, read_output
from flowhook.flows.run import TurnRun


class SayNode(Node):
    type_name = "say"

    __slots__ = ("next", "next_id", "output")

    def __init__(
        self, node_id: str, line: int, output: OutputTemplate, next: Target | None
    ) -> None:
        super().__init__(node_id, line)
        self.output = output
        self.next = next
        self.next_id = target_id(next)

    @classmethod
    def parse(cls, ctx: ParseContext) -> SayNode:
        output = read_output(ctx.fields, ctx.compiler)
        return cls(ctx.node_id, ctx.line, output, ctx.fields.target("next"))

    def targets(self) -> Iterator[Target]:
        return optional_targets(self.next)

    def execute(self, run: TurnRun) -> str | None:
        run.emit(self.output.render(run.scope))
        return self.next_id
