"""The contract between the flow engine and the rest of flowhook.

The session runner builds a ``TurnInput``, hands it with the session's
``SessionState`` to ``FlowEngine.run_turn`` and gets a ``TurnResult``: the outputs
to deliver, in order, and the new state to persist. Nothing here touches storage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from flowhook.nlu.matcher import NluResult


@dataclass(frozen=True, slots=True)
class TurnInput:
    """One user message as the flow sees it (``input`` in templates)."""

    user_id: str
    session_id: str
    trace_id: str
    text: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    locale: str | None = None
    # The user's profile as stored (per user, across sessions; ``profile`` in
    # templates). The engine never mutates it: changes come back in
    # ``TurnResult.profile``.
    profile: dict[str, Any] = field(default_factory=dict)
    # When the message arrived (Unix seconds); None: the engine's clock. Used for
    # the session idle timeout, so a backlog replayed later is judged by arrival.
    received_at: float | None = None
    # Idle seconds after which this session starts fresh, for this endpoint;
    # None: the engine's default; 0: never.
    session_timeout: float | None = None
    # Intent, score and slots computed outside the flow (an endpoint's NLU
    # connector); when set, the flow's built-in matching does not run.
    nlu: NluResult | None = None


@dataclass(frozen=True, slots=True)
class Output:
    """One bot output: a text and/or a data object."""

    text: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class SessionState:
    """Everything a session remembers between turns; must round-trip through JSON.

    ``waiting_at`` is the id of the question node the session waits at (None: the
    next input starts the flow from its start node); ``flow`` names the flow that
    node belongs to; ``reprompts`` counts failed answers to that question.
    ``extra`` holds engine features' state (the ``execute_flow`` return stack,
    the transcript the ``llm`` node reads). ``last_active`` is when the session's
    last turn ran (Unix seconds; None: never), for the idle timeout.
    ``handover`` is set by the ``handover`` node (``{"at", "flow", "node", ...}``)
    and cleared by ``reset`` or an expired session; None: not handed over.
    """

    context: dict[str, Any] = field(default_factory=dict)
    flow: str | None = None
    waiting_at: str | None = None
    reprompts: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    last_active: float | None = None
    handover: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "context": self.context,
            "flow": self.flow,
            "waitingAt": self.waiting_at,
            "reprompts": self.reprompts,
            "extra": self.extra,
            "lastActive": self.last_active,
            "handover": self.handover,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any] | None) -> SessionState:
        if not raw:
            return cls()
        return cls(
            context=dict(raw.get("context") or {}),
            flow=raw.get("flow"),
            waiting_at=raw.get("waitingAt"),
            reprompts=int(raw.get("reprompts") or 0),
            extra=dict(raw.get("extra") or {}),
            last_active=_float_or_none(raw.get("lastActive")),
            handover=dict(raw["handover"]) if raw.get("handover") else None,
        )


def _float_or_none(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


@dataclass(frozen=True, slots=True)
class TurnResult:
    """The outputs to deliver, in order, and the session's new state.

    ``profile`` is the user's whole new profile when the turn changed it (to be
    stored for ``TurnInput.user_id``), or None when it is unchanged.
    """

    outputs: list[Output]
    state: SessionState
    profile: dict[str, Any] | None = None
    intent: str | None = None  # the intent the input matched, for analytics
    # Set when the flow failed (the outputs are then its error output): what happened,
    # and the node it happened at when known.
    failure: str | None = None
    failed_node: str | None = None


class Flow(Protocol):
    """A loaded, validated flow."""

    @property
    def name(self) -> str: ...


class FlowEngine(Protocol):
    """Runs one turn of a flow. Implementations never raise for a flow's own errors:
    they log and turn them into an output, so a broken flow cannot stall a session."""

    async def run_turn(
        self, flow_name: str, state: SessionState, turn: TurnInput
    ) -> TurnResult: ...

    def has_flow(self, flow_name: str) -> bool: ...

    def reads_profile(self, flow_name: str) -> bool:
        """Whether a turn entered through this flow may read or write the profile."""
        ...

    @property
    def registry_generation(self) -> int:
        """Changes whenever the flows are replaced."""
        ...

    def flow_names(self) -> list[str]: ...
