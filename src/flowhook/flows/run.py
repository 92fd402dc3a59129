"""The working state of one turn, shared by the nodes that run in it."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flowhook.flows.templates import make_scope
from flowhook.flows.types import Output, TurnInput

if TYPE_CHECKING:
    from flowhook.flows.resources import EngineResources

# Each transcript message is cut to this many characters, so state stays small.
TRANSCRIPT_TEXT_LIMIT = 2000


@dataclass(frozen=True, slots=True)
class Jump:
    """Continue in another flow: at ``node`` (None: its start node)."""

    flow: str
    node: str | None = None


@dataclass(frozen=True, slots=True)
class Frame:
    """Where ``execute_flow`` continues when the sub-flow ends (``node`` None: end there)."""

    flow: str
    node: str | None

    def to_json(self) -> dict[str, Any]:
        return {"flow": self.flow, "node": self.node}


class TurnRun:
    """What nodes read and change while a turn runs.

    ``context`` and ``profile`` are the turn's own copies (the engine copies
    them, so a failed turn leaves the caller's state untouched); ``scope`` is
    what templates see and shares those same dicts, so a value stored by one node
    is visible to the next. ``flow_name`` is the flow whose node runs now (it
    changes with ``goto`` and ``execute_flow``).
    """

    __slots__ = (
        "config",
        "context",
        "ended",
        "flow_name",
        "handover",
        "jump",
        "now",
        "outputs",
        "profile",
        "reprompts",
        "resources",
        "rng",
        "scope",
        "stack",
        "transcript",
        "turn",
        "waiting_at",
        "was_reset",
    )

    def __init__(
        self,
        flow_name: str,
        turn: TurnInput,
        context: dict[str, Any],
        reprompts: int = 0,
        *,
        profile: dict[str, Any] | None = None,
        config: dict[str, Any] | None = None,
        nlu: dict[str, Any] | None = None,
        now: float = 0.0,
        rng: random.Random | None = None,
        resources: EngineResources | None = None,
        stack: list[Frame] | None = None,
        transcript: list[dict[str, str]] | None = None,
    ) -> None:
        self.flow_name = flow_name
        self.turn = turn
        self.context = context
        self.profile = profile if profile is not None else {}
        self.config = config if config is not None else {}
        self.scope = make_scope(turn, context, self.profile, self.config, nlu)
        self.outputs: list[Output] = []
        self.waiting_at: str | None = None
        self.reprompts = reprompts
        self.now = now
        self.rng = rng if rng is not None else random.Random()
        self.resources = resources
        self.stack: list[Frame] = stack if stack is not None else []
        # None: the engine keeps no transcript (no flow uses one).
        self.transcript = transcript
        self.jump: Jump | None = None
        self.ended = False
        self.was_reset = False
        self.handover: dict[str, Any] | None = None

    def emit(self, output: Output) -> None:
        self.outputs.append(output)
        if self.transcript is not None and output.text:
            self.add_transcript("assistant", output.text)

    def add_transcript(self, role: str, text: str) -> None:
        if self.transcript is not None:
            self.transcript.append({"role": role, "content": text[:TRANSCRIPT_TEXT_LIMIT]})

    def wait(self, node_id: str, reprompts: int = 0) -> None:
        """End the turn waiting at a question; the next input answers it."""
        self.waiting_at = node_id
        self.reprompts = reprompts

    def stop_waiting(self) -> None:
        self.waiting_at = None
        self.reprompts = 0

    def goto_flow(self, flow: str, node: str | None = None) -> None:
        """Continue in another flow once the current node returns ``None``."""
        self.jump = Jump(flow, node)

    def end_turn(self) -> None:
        """End the turn and forget the ``execute_flow`` return stack."""
        self.ended = True

    def set_context(self, values: dict[str, Any]) -> None:
        """Replace the context's contents in place (the scope shares the dict)."""
        self.context.clear()
        self.context.update(values)
