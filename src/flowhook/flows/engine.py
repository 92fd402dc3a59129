"""The flow engine: runs one turn of a flow for one session.

A turn starts at the flow's start node, or, when the session waits at a
question, by handing the input to that question. Nodes then run one after the
other until one ends the turn (no ``next``, ``end``, or a question that waits).

A turn is all or nothing: when the flow fails (a template error, a value that is
not JSON, more than ``max_steps`` nodes), the turn's outputs and context
changes are dropped, the session stops waiting, one error output is returned and
a log line names the flow and node. ``run_turn`` never raises for a flow's own
problems, so a broken flow cannot stall a session.

The caller's ``SessionState`` is never mutated: the result carries a new one.
"""

from __future__ import annotations

from collections.abc import Mapping

import structlog
from jinja2 import TemplateError

from flowhook.flows.nodes import AwaitsAnswer, Node
from flowhook.flows.registry import FlowRegistry
from flowhook.flows.run import TurnRun
from flowhook.flows.templates import FlowRuntimeError
from flowhook.flows.types import Output, SessionState, TurnInput, TurnResult

DEFAULT_MAX_STEPS = 1000
DEFAULT_ERROR_TEXT = "Sorry, something went wrong."

logger = structlog.get_logger("flowhook.flows")


class Engine:
    """Implements ``flowhook.flows.types.FlowEngine`` over a ``FlowRegistry``."""

    def __init__(
        self,
        registry: FlowRegistry,
        *,
        max_steps: int = DEFAULT_MAX_STEPS,
        error_output: Output | None = None,
    ) -> None:
        if max_steps < 1:
            raise ValueError("max_steps must be at least 1")
        self.registry = registry
        self.max_steps = max_steps
        self.error_output = error_output or Output(text=DEFAULT_ERROR_TEXT)

    def has_flow(self, flow_name: str) -> bool:
        return flow_name in self.registry

    def flow_names(self) -> list[str]:
        return self.registry.names()

    async def run_turn(self, flow_name: str, state: SessionState, turn: TurnInput) -> TurnResult:
        flow = self.registry.get(flow_name)
        if flow is None:
            logger.error("flow_unknown", flow=flow_name, session_id=turn.session_id)
            return self._failed(state)
        nodes = flow.nodes
        run = TurnRun(flow_name, turn, dict(state.context))
        current_id: str | None = None
        steps = 0
        try:
            waiting = self._waiting_node(flow_name, nodes, state)
            if waiting is not None:
                current_id = state.waiting_at
                run.reprompts = state.reprompts
                steps = 1
                next_id = waiting.resume(run)
            else:
                next_id = flow.start
            while next_id is not None:
                current_id = next_id
                node = nodes[next_id]
                steps += 1
                if steps > self.max_steps:
                    logger.error(
                        "flow_step_limit",
                        flow=flow_name,
                        node=current_id,
                        max_steps=self.max_steps,
                        session_id=turn.session_id,
                    )
                    return self._failed(state)
                next_id = await node.execute_async(run) if node.is_async else node.execute(run)
        except Exception as exc:
            # Any failure inside a node is the flow's problem, never the caller's.
            expected = isinstance(exc, TemplateError | FlowRuntimeError)
            logger.error(
                "flow_error",
                flow=flow_name,
                node=current_id,
                error=f"{type(exc).__name__}: {exc}",
                session_id=turn.session_id,
                exc_info=not expected,  # a traceback only for surprises
            )
            return self._failed(state)
        waiting_at = run.waiting_at
        new_state = SessionState(
            context=run.context,
            flow=flow_name if waiting_at is not None else None,
            waiting_at=waiting_at,
            reprompts=run.reprompts if waiting_at is not None else 0,
            extra=dict(state.extra),
        )
        return TurnResult(run.outputs, new_state)

    def _waiting_node(
        self, flow_name: str, nodes: Mapping[str, Node], state: SessionState
    ) -> AwaitsAnswer | None:
        """The question the input answers, if the session still waits at one of this flow."""
        if state.waiting_at is None:
            return None
        node = nodes.get(state.waiting_at)
        if state.flow not in (None, flow_name) or not isinstance(node, AwaitsAnswer):
            # The endpoint's flow changed or the flow was edited: start afresh.
            logger.info(
                "flow_waiting_position_dropped",
                flow=flow_name,
                waiting_flow=state.flow,
                node=state.waiting_at,
            )
            return None
        return node

    def _failed(self, state: SessionState) -> TurnResult:
        """The error output, with the session's context as before the turn, not waiting."""
        error = Output(text=self.error_output.text, data=dict(self.error_output.data))
        return TurnResult(
            [error],
            SessionState(context=dict(state.context), extra=dict(state.extra)),
        )
