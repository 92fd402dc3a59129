"""The working state of one turn, shared by the nodes that run in it."""

from __future__ import annotations

from typing import Any

from flowhook.flows.templates import make_scope
from flowhook.flows.types import Output, TurnInput


class TurnRun:
    """What nodes read and change while a turn runs.

    ``context`` is the turn's own copy of the session context (the engine copies
    it, so a failed turn leaves the caller's state untouched); ``scope`` is what
    templates see and shares that same dict, so a value stored by one node is
    visible to the next.
    """

    __slots__ = ("context", "flow_name", "outputs", "reprompts", "scope", "turn", "waiting_at")

    def __init__(
        self, flow_name: str, turn: TurnInput, context: dict[str, Any], reprompts: int = 0
    ) -> None:
        self.flow_name = flow_name
        self.turn = turn
        self.context = context
        self.scope = make_scope(turn, context)
        self.outputs: list[Output] = []
        self.waiting_at: str | None = None
        self.reprompts = reprompts

    def emit(self, output: Output) -> None:
        self.outputs.append(output)

    def wait(self, node_id: str, reprompts: int = 0) -> None:
        """End the turn waiting at a question; the next input answers it."""
        self.waiting_at = node_id
        self.reprompts = reprompts

    def stop_waiting(self) -> None:
        self.waiting_at = None
        self.reprompts = 0
