"""``set``: store values in the session context, then continue with ``next``.

Entries are set in file order, so a later entry can read an earlier one.
"""

from __future__ import annotations

from collections.abc import Iterator

from flowhook.flows.fields import Target, check_context_key, context_key_message
from flowhook.flows.nodes.base import Node, ParseContext, optional_targets, target_id
from flowhook.flows.run import TurnRun
from flowhook.flows.templates import Value


class SetNode(Node):
    type_name = "set"

    __slots__ = ("assignments", "next", "next_id")

    def __init__(
        self,
        node_id: str,
        line: int,
        assignments: tuple[tuple[str, Value], ...],
        next: Target | None,
    ) -> None:
        super().__init__(node_id, line)
        self.assignments = assignments
        self.next = next
        self.next_id = target_id(next)

    @classmethod
    def parse(cls, ctx: ParseContext) -> SetNode:
        fields = ctx.fields
        assignments: list[tuple[str, Value]] = []
        values = fields.mapping("context", required=True)
        if values is not None:
            entries = values.entries()
            if not entries:
                fields.problem("'context' must set at least one key", "context")
            for key, key_line, value_node in entries:
                if not check_context_key(key):
                    values.problem_at(key_line, context_key_message(key))
                    continue
                value = values.compile_node(key, value_node, ctx.compiler)
                if value is not None:
                    assignments.append((key, value))
        return cls(ctx.node_id, ctx.line, tuple(assignments), fields.target("next"))

    def targets(self) -> Iterator[Target]:
        return optional_targets(self.next)

    def execute(self, run: TurnRun) -> str | None:
        context = run.context
        scope = run.scope
        for key, value in self.assignments:
            context[key] = value.evaluate(scope)
        return self.next_id
