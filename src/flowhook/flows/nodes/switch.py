"""``switch``: compare one value with several cases and continue with the matching one.

The value (an expression) is compared as text with each case key: a string
as is, a number as written (``3``, ``2.5``), ``true``/``false``, ``null``
for a missing value. No case matches: ``default`` (missing: the turn ends).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flowhook.flows.fields import Target
from flowhook.flows.nodes.base import Node, ParseContext, optional_targets, target_id
from flowhook.flows.run import TurnRun
from flowhook.flows.values import Constant, Expression


def case_key(value: Any) -> str:
    """How a value reads as a case key."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class SwitchNode(Node):
    type_name = "switch"

    __slots__ = ("by_key", "cases", "default", "default_id", "value")

    def __init__(
        self,
        node_id: str,
        line: int,
        value: Expression | Constant,
        cases: tuple[tuple[str, Target], ...],
        default: Target | None,
    ) -> None:
        super().__init__(node_id, line)
        self.value = value
        self.cases = cases
        self.by_key = {key: target.node_id for key, target in cases}
        self.default = default
        self.default_id = target_id(default)

    @classmethod
    def parse(cls, ctx: ParseContext) -> SwitchNode:
        fields = ctx.fields
        value = fields.expression("value", ctx.compiler, required=True)
        cases: list[tuple[str, Target]] = []
        mapping = fields.mapping("cases", required=True)
        if mapping is not None:
            entries = mapping.entries()
            if not entries:
                fields.problem("'cases' must have at least one case", "cases")
            for key, key_line, node in entries:
                target = node.value if node.tag.endswith(":str") else None
                if not isinstance(target, str) or not target:
                    mapping.problem_at(key_line, f"case '{key}' must name a node")
                    continue
                cases.append((key, Target(f"case '{key}': node", target, key_line)))
        return cls(
            ctx.node_id, ctx.line, value or Constant(None), tuple(cases), fields.target("default")
        )

    def targets(self) -> Iterator[Target]:
        yield from (target for _, target in self.cases)
        yield from optional_targets(self.default)

    def execute(self, run: TurnRun) -> str | None:
        value = self.value.evaluate(run.scope)
        return self.by_key.get(case_key(value), self.default_id)
