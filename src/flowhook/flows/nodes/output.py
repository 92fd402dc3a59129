"""The ``text`` + ``data`` pair that say and question nodes turn into an ``Output``."""

from __future__ import annotations

from typing import Any

import yaml

from flowhook.flows.errors import FlowRuntimeError
from flowhook.flows.fields import FieldReader
from flowhook.flows.templates import TemplateCompiler
from flowhook.flows.types import Output
from flowhook.flows.values import DictValue, Expression, Scope, Value


class OutputTemplate:
    """A compiled output. A text that renders empty gives ``text=None`` (no empty bubbles)."""

    __slots__ = ("data", "text")

    def __init__(self, text: Value | None, data: Value | None) -> None:
        self.text = text
        self.data = data

    def render(self, scope: Scope, text: Value | None = None) -> Output:
        """Render; ``text`` replaces the node's own text (used for reprompts)."""
        source = text if text is not None else self.text
        rendered = source.evaluate(scope) if source is not None else None
        return Output(text=rendered or None, data=self.render_data(scope))

    def render_data(self, scope: Scope) -> dict[str, Any]:
        if self.data is None:
            return {}
        data = self.data.evaluate(scope)
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise FlowRuntimeError(f"'data' must evaluate to an object, got {type(data).__name__}")
        return data


def read_output(fields: FieldReader, compiler: TemplateCompiler) -> OutputTemplate:
    """Read ``text`` and ``data``; at least one of them is required."""
    text = fields.text("text", compiler)
    data_node = fields.node("data")
    data: Value | None = None
    if data_node is not None:
        is_expression = isinstance(data_node, yaml.ScalarNode) and data_node.tag.endswith(":str")
        if not isinstance(data_node, yaml.MappingNode) and not is_expression:
            fields.problem("'data' must be a mapping or a single {{ expression }}", "data")
        else:
            data = fields.compile_node("data", data_node, compiler)
            if data is not None and not isinstance(data, DictValue | Expression):
                fields.problem("'data' must be a mapping or a single {{ expression }}", "data")
                data = None
    if text is None and data is None and not fields.has("text") and not fields.has("data"):
        fields.problem("needs 'text' and/or 'data'")
    return OutputTemplate(text, data)
