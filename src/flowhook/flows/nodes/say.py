"""``say``: send one output (text and/or data), then continue with ``next``.

With ``variants`` (a list of texts, or of ``{text, data}`` mappings) one is
picked at random each time; the node's own ``data`` goes with a variant that
has none.
"""

from __future__ import annotations

from collections.abc import Iterator

import yaml

from flowhook.flows.fields import FieldReader, Target
from flowhook.flows.nodes.base import Node, ParseContext, optional_targets, target_id
from flowhook.flows.nodes.output import OutputTemplate, read_output
from flowhook.flows.run import TurnRun


class SayNode(Node):
    type_name = "say"

    __slots__ = ("next", "next_id", "output", "variants")

    def __init__(
        self,
        node_id: str,
        line: int,
        output: OutputTemplate,
        next: Target | None,
        variants: tuple[OutputTemplate, ...] = (),
    ) -> None:
        super().__init__(node_id, line)
        self.output = output
        self.next = next
        self.next_id = target_id(next)
        self.variants = variants

    @classmethod
    def parse(cls, ctx: ParseContext) -> SayNode:
        fields = ctx.fields
        variants = _read_variants(ctx) if fields.has("variants") else ()
        if fields.has("variants"):
            if fields.has("text"):
                fields.problem("use 'text' or 'variants', not both", "variants")
            output = OutputTemplate(None, fields.value("data", ctx.compiler))
        else:
            output = read_output(fields, ctx.compiler)
        return cls(ctx.node_id, ctx.line, output, fields.target("next"), variants)

    def targets(self) -> Iterator[Target]:
        return optional_targets(self.next)

    def execute(self, run: TurnRun) -> str | None:
        if self.variants:
            variant = run.rng.choice(self.variants)
            output = variant.render(run.scope)
            if not output.data and self.output.data is not None:
                output = type(output)(output.text, self.output.render_data(run.scope))
            run.emit(output)
        else:
            run.emit(self.output.render(run.scope))
        return self.next_id


def _read_variants(ctx: ParseContext) -> tuple[OutputTemplate, ...]:
    fields = ctx.fields
    node = fields.node("variants")
    if not isinstance(node, yaml.SequenceNode) or not node.value:
        fields.problem("'variants' must be a non-empty list of texts or {text, data}", "variants")
        return ()
    variants = []
    for item in node.value:
        if isinstance(item, yaml.MappingNode):
            reader = FieldReader(item, fields.log, f"{fields.what}: variant")
            variants.append(read_output(reader, ctx.compiler))
            reader.finish()
        else:
            text = fields.text_node("variants", item, ctx.compiler)
            if text is not None:
                variants.append(OutputTemplate(text, None))
    return tuple(variants)
