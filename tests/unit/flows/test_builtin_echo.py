"""The built-in ``echo`` flow."""

from __future__ import annotations

import pytest

from flowhook.flows import Engine, FlowRegistry, Output, SessionState

from .helpers import NOW, make_input


@pytest.fixture
def engine() -> Engine:
    return Engine(FlowRegistry.load(None), clock=lambda: NOW)


async def test_echo_repeats_text_and_data(engine: Engine) -> None:
    """Echo answers with exactly one output: ``You said: <text>`` and the input's data."""
    data = {"orderId": 17, "tags": ["a"]}
    result = await engine.run_turn("echo", SessionState(), make_input("Hello there", data))
    assert result.outputs == [Output(text="You said: Hello there", data=data)]
    assert result.state == SessionState(last_active=NOW)


async def test_echo_without_text_returns_data_only(engine: Engine) -> None:
    """Without input text, echo's one output has ``text=None`` and the input's data."""
    result = await engine.run_turn("echo", SessionState(), make_input(None, {"k": "v"}))
    assert result.outputs == [Output(text=None, data={"k": "v"})]


async def test_echo_output_data_is_a_copy(engine: Engine) -> None:
    """The output's data equals the input's data but is not the same object."""
    data = {"nested": {"n": 1}}
    result = await engine.run_turn("echo", SessionState(), make_input("x", data))
    assert result.outputs[0].data == data
    assert result.outputs[0].data["nested"] is not data["nested"]


async def test_echo_keeps_no_state(engine: Engine) -> None:
    """Echo never waits and leaves the context as it was."""
    state = SessionState(context={"a": 1})
    result = await engine.run_turn("echo", state, make_input("one"))
    assert result.state == SessionState(context={"a": 1}, last_active=NOW)
