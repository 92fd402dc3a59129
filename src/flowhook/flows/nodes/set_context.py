"""``set``: store values in the session ``context`` and/or the user's ``profile``.

Entries are set in file order (``context`` first, then ``profile``), so a later
entry can read an earlier one. Then the flow continues with ``next``.
"""

from __future__ import annotations

from collections.abc import Iterator

from flowhook.flows.fields import Target, check_context_key, context_key_message
from flowhook.flows.nodes.base import Node, ParseContext, optional_targets, target_id
from flowhook.flows.run import TurnRun
from flowhook.flows.values import Value


class SetNode(Node):
    type_name = "set"

    __slots__ = ("assignments", "next", "next_id", "profile_assignments")

    def __init__(
        self,
        node_id: str,
        line: int,
        assignments: tuple[tuple[str, Value], ...],
        next: Target | None,
        profile_assignments: tuple[tuple[str, Value], ...] = (),
    ) -> None:
        super().__init__(node_id, line)
        self.assignments = assignments
        self.profile_assignments = profile_assignments
        self.next = next
        self.next_id = target_id(next)

    @classmethod
    def parse(cls, ctx: ParseContext) -> SetNode:
        fields = ctx.fields
        if not fields.has("context") and not fields.has("profile"):
            fields.problem("needs 'context' and/or 'profile'")
        assignments = _read_assignments(ctx, "context")
        profile = _read_assignments(ctx, "profile")
        return cls(ctx.node_id, ctx.line, assignments, fields.target("next"), profile)

    def targets(self) -> Iterator[Target]:
        return optional_targets(self.next)

    def execute(self, run: TurnRun) -> str | None:
        context = run.context
        scope = run.scope
        for key, value in self.assignments:
            context[key] = value.evaluate(scope)
        if self.profile_assignments:
            profile = run.profile
            for key, value in self.profile_assignments:
                profile[key] = value.evaluate(scope)
        return self.next_id


def _read_assignments(ctx: ParseContext, field: str) -> tuple[tuple[str, Value], ...]:
    assignments: list[tuple[str, Value]] = []
    values = ctx.fields.mapping(field)
    if values is None:
        return ()
    entries = values.entries()
    if not entries:
        ctx.fields.problem(f"'{field}' must set at least one key", field)
    for key, key_line, value_node in entries:
        if not check_context_key(key):
            values.problem_at(key_line, context_key_message(key))
            continue
        value = values.compile_node(key, value_node, ctx.compiler)
        if value is not None:
            assignments.append((key, value))
    return tuple(assignments)
