"""``if``: evaluate ``condition`` and continue with ``then`` or ``else``.

A missing branch ends the turn, like a missing ``next``.
"""

from __future__ import annotations

from collections.abc import Iterator

from flowhook.flows.fields import Target
from flowhook.flows.nodes.base import Node, ParseContext, optional_targets, target_id
from flowhook.flows.run import TurnRun
from flowhook.flows.values import Constant, Expression


class IfNode(Node):
    type_name = "if"

    __slots__ = ("condition", "else_id", "else_target", "then_id", "then_target")

    def __init__(
        self,
        node_id: str,
        line: int,
        condition: Expression | Constant,
        then: Target | None,
        else_: Target | None,
    ) -> None:
        super().__init__(node_id, line)
        self.condition = condition
        self.then_target = then
        self.else_target = else_
        self.then_id = target_id(then)
        self.else_id = target_id(else_)

    @classmethod
    def parse(cls, ctx: ParseContext) -> IfNode:
        fields = ctx.fields
        condition = fields.expression("condition", ctx.compiler, required=True)
        then, else_ = fields.target("then"), fields.target("else")
        if then is None and else_ is None and not fields.has("then") and not fields.has("else"):
            fields.problem("needs 'then' and/or 'else'")
        return cls(ctx.node_id, ctx.line, condition or Constant(False), then, else_)

    def targets(self) -> Iterator[Target]:
        return optional_targets(self.then_target, self.else_target)

    def execute(self, run: TurnRun) -> str | None:
        if isinstance(self.condition, Expression):
            return self.then_id if self.condition.is_true(run.scope) else self.else_id
        return self.then_id if self.condition.value else self.else_id
