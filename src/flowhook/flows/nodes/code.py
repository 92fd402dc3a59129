"""``code``: call a Python function of the flow author's, in a worker process.

``function: "helpers.py:name"`` names a function in a file next to the flow file,
inside the flows dir; ``function: "package.module:name"`` a module from sys.path,
which runs only when the server setting ``code_allow_modules`` is on. Nothing is
imported in the server: the name is checked when the flow is loaded and the
function runs in a worker process (``flowhook.isolation``), with a hard timeout
(``code_timeout_seconds``) and a memory limit (``code_memory_mb``). A call that
runs past its timeout is killed and fails the turn, whatever ``error`` says.

The function is called as ``name(input, context, profile)`` with JSON copies of
the three mappings templates see; it may be ``async``. It returns None or a
mapping with any of:

* ``outputs``: a list of texts or ``{"text": ..., "data": {...}}`` to send;
* ``context`` / ``profile``: keys to set (merged, not replaced);
* ``next``: the id of the node to continue with instead of ``next``; it must be
  listed in the node's ``branches`` (so the flow's graph stays checkable).

If it raises, the flow goes on at ``error`` (the message is stored under
``context.codeError``), or the turn fails when there is no ``error``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from flowhook.flows.errors import FlowRuntimeError
from flowhook.flows.fields import Target
from flowhook.flows.nodes.base import Node, ParseContext, optional_targets, target_id
from flowhook.flows.run import TurnRun
from flowhook.flows.types import Output
from flowhook.flows.values import to_plain
from flowhook.isolation import CodeCallFailed, CodeRefused, CodeTimeout, CodeWorkers
from flowhook.trusted_code import MODULES_SETTING, CodeRef, resolve_code_ref

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
        function: CodeRef | None,
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
                # Modules are refused at run time unless the server allows them: the
                # flow loader does not know the server's settings.
                base = Path(ctx.flow_file).parent if ctx.flow_file else None
                function = resolve_code_ref(spec, base, allow_modules=True)
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
        workers = run.resources.code_workers if run.resources is not None else None
        if workers is None:  # pragma: no cover - engines always have resources
            workers = CodeWorkers()
        scope = run.scope
        args = [dict(scope["input"]), dict(run.context), dict(run.profile)]
        try:
            result = await workers.run_isolated(self.function, args)
        except (CodeTimeout, CodeRefused) as exc:
            raise FlowRuntimeError(str(exc)) from None  # fails the turn, never "error"
        except CodeCallFailed as exc:
            if self.error_id is None:
                raise FlowRuntimeError(f"code '{self.spec}' raised {exc}") from None
            run.context[ERROR_KEY] = str(exc)
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


def module_code_problems(label: str, nodes: Iterable[Node]) -> list[str]:
    """``file:line`` problems for code nodes naming a sys.path module: what a server
    without ``code_allow_modules`` refuses to load (at start and on snapshot import)."""
    return [
        f"{label}:{node.line}: node '{node.node_id}': function '{node.spec}' names a module "
        f"from sys.path; only files in the flows dir load as code unless {MODULES_SETTING} "
        "is on"
        for node in nodes
        if isinstance(node, CodeNode) and node.function is not None and node.function.module
    ]
