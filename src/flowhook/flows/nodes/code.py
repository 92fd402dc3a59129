"""``code``: call a Python function of the user's. For trusted code only.

``function: "package.module:name"`` names an importable function;
``function: "helpers.py:name"`` a function in a file next to the flow file.
The module is imported when the flow is loaded, with the full rights of the
flowhook process: only name code you trust as much as flowhook itself.

The function is called as ``name(input, context, profile)`` with copies of the
three mappings templates see; it may be ``async``. It returns None or a
mapping with any of:

* ``outputs``: a list of texts or ``{"text": ..., "data": {...}}`` to send;
* ``context`` / ``profile``: keys to set (merged, not replaced);
* ``next``: the id of the node to continue with instead of ``next``; it must be
  listed in the node's ``branches`` (so the flow's graph stays checkable).

If it raises, the flow goes on at ``error`` (the message is stored under
``context.codeError``), or the turn fails when there is no ``error``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from flowhook.flows.errors import FlowRuntimeError
from flowhook.flows.fields import Target
from flowhook.flows.nodes.base import Node, ParseContext, optional_targets, target_id
from flowhook.flows.run import TurnRun
from flowhook.flows.types import Output
from flowhook.flows.values import to_plain
from flowhook.trusted_code import import_function

ERROR_KEY = "codeError"


class CodeNode(Node):
    type_name = "code"
    is_async = True  # the function may be async; a sync one is called directly

    __slots__ = (
        "branch_ids",
        "branches",
        "error",
        "error_id",
        "function",
        "next",
        "next_id",
        "spec",
    )

    def __init__(
        self,
        node_id: str,
        line: int,
        spec: str,
        function: Callable[..., Any] | None,
        next: Target | None,
        error: Target | None,
        branches: tuple[Target, ...] = (),
    ) -> None:
        super().__init__(node_id, line)
        self.branches = branches
        self.branch_ids = frozenset(target.node_id for target in branches)
        self.spec = spec
        self.function = function
        self.next = next
        self.next_id = target_id(next)
        self.error = error
        self.error_id = target_id(error)

    @classmethod
    def parse(cls, ctx: ParseContext) -> CodeNode:
        fields = ctx.fields
        spec = fields.string("function", required=True)
        function = None
        if spec is not None:
            try:
                function = import_function(spec, ctx.flow_file)
            except ValueError as exc:
                fields.problem(str(exc), "function")
        return cls(
            ctx.node_id,
            ctx.line,
            spec or "",
            function,
            fields.target("next"),
            fields.target("error"),
            tuple(
                Target("branches", branch, fields.line_of("branches"))
                for branch in fields.string_list("branches") or ()
            ),
        )

    def targets(self) -> Iterator[Target]:
        yield from optional_targets(self.next, self.error)
        yield from self.branches

    def execute(self, run: TurnRun) -> str | None:
        raise FlowRuntimeError("the code node runs asynchronously")  # pragma: no cover

    async def execute_async(self, run: TurnRun) -> str | None:
        if self.function is None:
            raise FlowRuntimeError(f"code function '{self.spec}' is not loaded")
        scope = run.scope
        try:
            result = self.function(dict(scope["input"]), dict(run.context), dict(run.profile))
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            if self.error_id is None:
                raise FlowRuntimeError(
                    f"code '{self.spec}' raised {type(exc).__name__}: {exc}"
                ) from exc
            run.context[ERROR_KEY] = f"{type(exc).__name__}: {exc}"
            return self.error_id
        return self._apply(run, result)

    def _apply(self, run: TurnRun, result: Any) -> str | None:
        if result is None:
            return self.next_id
        if not isinstance(result, Mapping):
            raise FlowRuntimeError(f"code '{self.spec}' must return a mapping or None")
        for item in result.get("outputs") or ():
            if isinstance(item, str):
                run.emit(Output(text=item or None))
            elif isinstance(item, Mapping):
                data = to_plain(item.get("data") or {})
                if not isinstance(data, dict):
                    raise FlowRuntimeError("an output's 'data' must be an object")
                text = item.get("text")
                run.emit(Output(text=str(text) if text else None, data=data))
            else:
                raise FlowRuntimeError("'outputs' must hold texts or {text, data} mappings")
        for key, target in (("context", run.context), ("profile", run.profile)):
            updates = result.get(key)
            if updates is not None:
                plain = to_plain(updates)
                if not isinstance(plain, dict):
                    raise FlowRuntimeError(f"'{key}' must be a mapping")
                target.update(plain)
        next_id = result.get("next")
        if next_id is None:
            return self.next_id
        if next_id not in self.branch_ids:
            raise FlowRuntimeError(f"code '{self.spec}' chose 'next' {next_id!r}, not a branch")
        return str(next_id)
