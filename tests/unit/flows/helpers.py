"""Helpers shared by the flow tests: write a flow, build an engine, hold a conversation."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import orjson

from flowhook.flows import Engine, FlowRegistry, Output, SessionState, TurnInput

NOW = 1_700_000_000.0
"""The fixed clock of ``engine_for`` engines (Unix seconds)."""


def write_flow(folder: Path, source: str, file_name: str = "test.yaml") -> Path:
    path = folder / file_name
    path.write_text(textwrap.dedent(source).lstrip("\n"), encoding="utf-8")
    return path


def engine_for(folder: Path, source: str, **engine_options: Any) -> Engine:
    """An engine with the built-ins plus one flow file ``test.yaml`` (flow name ``test``)."""
    write_flow(folder, source)
    engine_options.setdefault("clock", lambda: NOW)
    return Engine(FlowRegistry.load(folder), **engine_options)


def make_input(
    text: str | None = None, data: dict[str, Any] | None = None, **fields: Any
) -> TurnInput:
    return TurnInput(
        user_id=fields.get("user_id", "user123"),
        session_id=fields.get("session_id", "session123"),
        trace_id=fields.get("trace_id", "trace-1"),
        text=text,
        data=data or {},
        locale=fields.get("locale"),
        profile=fields.get("profile") or {},
        received_at=fields.get("received_at"),
    )


class Conversation:
    """Sends inputs to one flow, storing the state between turns as JSON bytes, as a store would."""

    def __init__(self, engine: Engine, flow: str = "test") -> None:
        self.engine = engine
        self.flow = flow
        self.stored = orjson.dumps(SessionState().to_json())

    @property
    def state(self) -> SessionState:
        return SessionState.from_json(orjson.loads(self.stored))

    async def send(
        self, text: str | None = None, data: dict[str, Any] | None = None
    ) -> list[Output]:
        result = await self.engine.run_turn(self.flow, self.state, make_input(text, data))
        self.stored = orjson.dumps(result.state.to_json())
        return result.outputs

    async def texts(
        self, text: str | None = None, data: dict[str, Any] | None = None
    ) -> list[str | None]:
        return [output.text for output in await self.send(text, data)]
