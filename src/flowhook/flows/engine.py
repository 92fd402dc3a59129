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

Across turns the engine also keeps: the ``execute_flow`` return stack while a
sub-flow waits at a question (``extra["stack"]``), the flow the turn entered
by when the session waits in another one (``extra["entryFlow"]``), a bounded
transcript when a flow has an ``llm`` node (``extra["transcript"]``), and
``last_active`` for the idle timeout: an input arriving more than
``session_timeout`` seconds after the previous turn starts a fresh session.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import structlog
from jinja2 import TemplateError

from flowhook.flows.errors import FlowRuntimeError
from flowhook.flows.model import LoadedFlow
from flowhook.flows.nodes import AwaitsAnswer
from flowhook.flows.profile_use import profile_flows
from flowhook.flows.registry import FlowRegistry
from flowhook.flows.resources import EngineResources
from flowhook.flows.run import Frame, TurnRun
from flowhook.flows.types import Output, SessionState, TurnInput, TurnResult

DEFAULT_MAX_STEPS = 1000
DEFAULT_ERROR_TEXT = "Sorry, something went wrong."
DEFAULT_SESSION_TIMEOUT = 1800.0
DEFAULT_TRANSCRIPT_LIMIT = 20
# ``execute_flow`` nesting deeper than this fails the turn (a flow calling itself).
MAX_FLOW_DEPTH = 16

# Keys of ``SessionState.extra`` the engine manages.
STACK_KEY = "stack"
ENTRY_FLOW_KEY = "entryFlow"
TRANSCRIPT_KEY = "transcript"

logger = structlog.get_logger("flowhook.flows")


RESUME_AT_KEY = "resumeAt"


class Engine:
    """Implements ``flowhook.flows.types.FlowEngine`` over a ``FlowRegistry``.

    ``session_timeout`` (seconds; None or 0: never) is the idle time after which
    a session starts fresh. ``config`` is ``config`` in templates. ``resources``
    holds the HTTP session and defaults of ``http``/``llm`` nodes; call
    ``aclose()`` when done with the engine. ``clock`` and ``rng`` are injectable
    for tests.
    """

    def __init__(
        self,
        registry: FlowRegistry,
        *,
        max_steps: int = DEFAULT_MAX_STEPS,
        error_output: Output | None = None,
        session_timeout: float | None = DEFAULT_SESSION_TIMEOUT,
        transcript_limit: int = DEFAULT_TRANSCRIPT_LIMIT,
        config: Mapping[str, Any] | None = None,
        resources: EngineResources | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        if max_steps < 1:
            raise ValueError("max_steps must be at least 1")
        if transcript_limit < 0:
            raise ValueError("transcript_limit must not be negative")
        self.max_steps = max_steps
        self.error_output = error_output or Output(text=DEFAULT_ERROR_TEXT)
        self.session_timeout = session_timeout or None
        self.transcript_limit = transcript_limit
        self.config: dict[str, Any] = dict(config or {})
        self.resources = resources or EngineResources()
        self._clock = clock
        self._rng = rng or random.Random()
        self.registry_generation = 0
        self.use_registry(registry)

    def use_registry(self, registry: FlowRegistry) -> None:
        """Run these flows from now on (e.g. after a snapshot import wrote new ones)."""
        self.registry = registry
        # The transcript costs state size: keep it only when a flow reads it.
        self._keeps_transcript = self.transcript_limit > 0 and any(
            node.uses_transcript
            for name in registry.names()
            for node in registry[name].nodes.values()
        )
        self._profile_flows = profile_flows({name: registry[name] for name in registry.names()})
        # Bumped on every swap: a turn that skipped the user's profile under the old
        # flows runs again if the flows changed while it ran.
        self.registry_generation += 1

    def reads_profile(self, flow_name: str) -> bool:
        """Whether a turn entered through ``flow_name`` may read or write the user's
        profile (``flows.profile_use``); an unknown flow counts as one that does."""
        return flow_name in self._profile_flows or flow_name not in self.registry

    def has_flow(self, flow_name: str) -> bool:
        return flow_name in self.registry

    def flow_names(self) -> list[str]:
        return self.registry.names()

    async def aclose(self) -> None:
        """Close the shared HTTP session of ``http`` and ``llm`` nodes."""
        await self.resources.aclose()

    async def run_turn(self, flow_name: str, state: SessionState, turn: TurnInput) -> TurnResult:
        now = turn.received_at if turn.received_at is not None else self._clock()
        flow = self.registry.get(flow_name)
        if flow is None:
            logger.error("flow_unknown", flow=flow_name, session_id=turn.session_id)
            return self._failed(state, now, f"flow '{flow_name}' does not exist")
        if self._expired(state, now, turn.session_timeout):
            logger.info("session_expired", flow=flow_name, session_id=turn.session_id)
            state = SessionState()
        waiting = self._waiting_node(flow_name, state)
        start_flow = waiting[0] if waiting is not None else flow
        if turn.nlu is not None:
            nlu: dict[str, Any] | None = turn.nlu.as_input()
        else:
            nlu = start_flow.nlu.match(turn.text) if start_flow.nlu and turn.text else None
        run = TurnRun(
            start_flow.name,
            turn,
            dict(state.context),
            profile=dict(turn.profile),
            config=self.config,
            nlu=nlu,
            now=now,
            rng=self._rng,
            resources=self.resources,
            stack=_load_stack(state.extra) if waiting is not None else [],
            transcript=self._load_transcript(state.extra),
        )
        if turn.text:
            run.add_transcript("user", turn.text)
        nodes = start_flow.nodes
        current_id: str | None = None
        steps = 0
        try:
            if waiting is not None:
                current_id = state.waiting_at
                run.reprompts = state.reprompts
                steps = 1
                next_id = waiting[1].resume(run)
            else:
                # A handover ended with "resume at": the flow takes over at that node.
                resume = state.extra.get(RESUME_AT_KEY)
                next_id = resume if isinstance(resume, str) and resume in flow.nodes else flow.start
            while True:
                if next_id is None:
                    if run.ended or run.waiting_at is not None:
                        break
                    if run.jump is not None:
                        jump, run.jump = run.jump, None
                        target = self._flow(jump.flow)
                        run.flow_name, nodes = target.name, target.nodes
                        next_id = jump.node or target.start
                        continue
                    if run.stack:
                        frame = run.stack.pop()
                        run.flow_name, nodes = frame.flow, self._flow(frame.flow).nodes
                        next_id = frame.node
                        continue
                    break
                current_id = next_id
                node = nodes.get(next_id)
                if node is None:
                    raise FlowRuntimeError(f"flow '{run.flow_name}' has no node '{next_id}'")
                steps += 1
                if steps > self.max_steps:
                    logger.error(
                        "flow_step_limit",
                        flow=run.flow_name,
                        node=current_id,
                        max_steps=self.max_steps,
                        session_id=turn.session_id,
                    )
                    return self._failed(
                        state,
                        now,
                        f"flow '{run.flow_name}' ran more than {self.max_steps} nodes",
                        current_id,
                    )
                next_id = await node.execute_async(run) if node.is_async else node.execute(run)
        except Exception as exc:
            # Any failure inside a node is the flow's problem, never the caller's.
            expected = isinstance(exc, TemplateError | FlowRuntimeError)
            failing = self.registry.get(run.flow_name)
            node_obj = None if failing is None else failing.nodes.get(current_id or "")
            where = (
                None if failing is None or node_obj is None else f"{failing.source}:{node_obj.line}"
            )
            # The runner logs the failed message once, with this reason; the detail
            # (and a traceback for surprises) is here for debugging.
            logger.debug(
                "flow_error",
                flow=run.flow_name,
                node=current_id,
                # where to look: the failing node's file and line
                at=where,
                error=f"{type(exc).__name__}: {exc}",
                session_id=turn.session_id,
                exc_info=not expected,  # a traceback only for surprises
            )
            at = f" ({where})" if where else ""
            return self._failed(
                state,
                now,
                f"flow '{run.flow_name}'{at}: {type(exc).__name__}: {exc}",
                None if current_id is None else f"{run.flow_name}/{current_id}",
            )
        return TurnResult(
            run.outputs,
            self._new_state(flow_name, state, run, now),
            run.profile if run.profile != turn.profile else None,
            intent=None if nlu is None else nlu.get("intent"),
        )

    def _new_state(
        self, flow_name: str, state: SessionState, run: TurnRun, now: float
    ) -> SessionState:
        waiting_at = run.waiting_at
        extra = {} if run.was_reset else dict(state.extra)
        extra.pop(STACK_KEY, None)
        extra.pop(ENTRY_FLOW_KEY, None)
        extra.pop(RESUME_AT_KEY, None)
        if waiting_at is not None:
            if run.stack:
                extra[STACK_KEY] = [frame.to_json() for frame in run.stack]
            if run.flow_name != flow_name:
                extra[ENTRY_FLOW_KEY] = flow_name
        if run.transcript is not None:
            extra[TRANSCRIPT_KEY] = run.transcript[-self.transcript_limit :]
        if run.handover is not None:
            handover: dict[str, Any] | None = run.handover
        else:
            handover = None if run.was_reset else state.handover
        return SessionState(
            context=run.context,
            flow=run.flow_name if waiting_at is not None else None,
            waiting_at=waiting_at,
            reprompts=run.reprompts if waiting_at is not None else 0,
            extra=extra,
            last_active=now,
            handover=handover,
        )

    def _flow(self, name: str) -> LoadedFlow:
        flow = self.registry.get(name)
        if flow is None:
            raise FlowRuntimeError(f"flow '{name}' does not exist")
        return flow

    def _expired(self, state: SessionState, now: float, override: float | None) -> bool:
        timeout = self.session_timeout if override is None else (override or None)
        last = state.last_active
        return timeout is not None and last is not None and now - last > timeout

    def _load_transcript(self, extra: Mapping[str, Any]) -> list[dict[str, str]] | None:
        if not self._keeps_transcript:
            return None
        stored = extra.get(TRANSCRIPT_KEY)
        if not isinstance(stored, list):
            return []
        return [
            {"role": str(item.get("role")), "content": str(item.get("content"))}
            for item in stored
            if isinstance(item, dict)
        ]

    def _waiting_node(
        self, flow_name: str, state: SessionState
    ) -> tuple[LoadedFlow, AwaitsAnswer] | None:
        """The question the input answers, if the session still waits at one.

        The question may belong to another flow (reached by ``goto`` or
        ``execute_flow``) as long as the session entered through ``flow_name``.
        """
        if state.waiting_at is None:
            return None
        waiting_flow = state.flow or flow_name
        entered_here = waiting_flow == flow_name or state.extra.get(ENTRY_FLOW_KEY) == flow_name
        flow = self.registry.get(waiting_flow) if entered_here else None
        node = flow.nodes.get(state.waiting_at) if flow is not None else None
        if flow is None or not isinstance(node, AwaitsAnswer):
            # The endpoint's flow changed or the flow was edited: start afresh.
            logger.info(
                "flow_waiting_position_dropped",
                flow=flow_name,
                waiting_flow=state.flow,
                node=state.waiting_at,
            )
            return None
        return flow, node

    def _failed(
        self, state: SessionState, now: float, reason: str, node: str | None = None
    ) -> TurnResult:
        """The error output, with the session's context as before the turn, not waiting;
        ``reason`` and ``node`` say what failed where."""
        error = Output(text=self.error_output.text, data=dict(self.error_output.data))
        extra = dict(state.extra)
        extra.pop(STACK_KEY, None)
        extra.pop(ENTRY_FLOW_KEY, None)
        extra.pop(RESUME_AT_KEY, None)
        return TurnResult(
            [error],
            SessionState(
                context=dict(state.context),
                extra=extra,
                last_active=now,
                handover=state.handover,
            ),
            failure=reason,
            failed_node=node,
        )


def _load_stack(extra: Mapping[str, Any]) -> list[Frame]:
    stored = extra.get(STACK_KEY)
    if not isinstance(stored, list):
        return []
    frames = []
    for item in stored:
        if isinstance(item, dict) and isinstance(item.get("flow"), str):
            node = item.get("node")
            frames.append(Frame(item["flow"], node if isinstance(node, str) else None))
    return frames
