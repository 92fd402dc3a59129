"""Session idle expiry and the JSON form of the new state fields."""

from __future__ import annotations

from pathlib import Path

from flowhook.flows import SessionState

from .helpers import NOW, engine_for, make_input

FLOW = """
nodes:
  check: {type: if, condition: context.name, then: known, else: ask}
  ask: {type: question, text: "Name?", store: name, next: known}
  known: {type: say, text: "Hi {{ context.name }}"}
"""


async def test_session_expires_after_the_idle_timeout(tmp_path: Path) -> None:
    """An input arriving more than ``session_timeout`` after the last turn starts fresh."""
    engine = engine_for(tmp_path, FLOW, session_timeout=60)
    state = SessionState(context={"name": "Ada"}, last_active=NOW - 61)
    result = await engine.run_turn("test", state, make_input("x"))
    assert [o.text for o in result.outputs] == ["Name?"]
    assert result.state.context == {}
    assert result.state.last_active == NOW


async def test_session_within_the_timeout_is_kept(tmp_path: Path) -> None:
    """An input within the timeout keeps context and waiting position."""
    engine = engine_for(tmp_path, FLOW, session_timeout=60)
    waiting = SessionState(flow="test", waiting_at="ask", last_active=NOW - 59)
    result = await engine.run_turn("test", waiting, make_input("Ada"))
    assert [o.text for o in result.outputs] == ["Hi Ada"]


async def test_received_at_decides_expiry_not_the_clock(tmp_path: Path) -> None:
    """``TurnInput.received_at`` is the time judged, so a replayed backlog keeps sessions."""
    engine = engine_for(tmp_path, FLOW, session_timeout=60)
    state = SessionState(context={"name": "Ada"}, last_active=NOW - 3600)
    result = await engine.run_turn("test", state, make_input("x", received_at=NOW - 3590))
    assert [o.text for o in result.outputs] == ["Hi Ada"]
    assert result.state.last_active == NOW - 3590


async def test_expiry_disabled(tmp_path: Path) -> None:
    """``session_timeout=None`` never expires a session."""
    engine = engine_for(tmp_path, FLOW, session_timeout=None)
    state = SessionState(context={"name": "Ada"}, last_active=0.0)
    result = await engine.run_turn("test", state, make_input("x"))
    assert [o.text for o in result.outputs] == ["Hi Ada"]


def test_state_json_round_trip_and_old_states() -> None:
    """New fields round-trip; states stored before them (no lastActive/handover) still load."""
    state = SessionState(
        context={"a": 1}, extra={"stack": []}, last_active=12.5, handover={"at": 1.0}
    )
    assert SessionState.from_json(state.to_json()) == state
    old = {"context": {"a": 1}, "flow": None, "waitingAt": None, "reprompts": 0, "extra": {}}
    assert SessionState.from_json(old) == SessionState(context={"a": 1})
    assert SessionState.from_json({"lastActive": "bad"}).last_active is None
