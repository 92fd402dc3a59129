"""The engine: turn boundaries, state handling, failures turned into one error output."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from flowhook.flows import Engine, Flow, FlowEngine, FlowRegistry, Output, SessionState
from flowhook.flows.nodes import DEFAULT_NODE_TYPES, Node, ParseContext
from flowhook.flows.run import TurnRun

from .helpers import NOW, Conversation, engine_for, make_input, write_flow

ERROR = Output(text="Sorry, something went wrong.", data={})


async def test_state_round_trips_through_json_between_turns(tmp_path: Path) -> None:
    """A multi-turn conversation works when the state is stored as JSON between every turn."""
    conversation = Conversation(
        engine_for(
            tmp_path,
            """
            nodes:
              name: {type: question, text: "Name?", store: name, next: age}
              age: {type: question, text: "Age, {{ context.name }}?", answer: number,
                    store: age, next: done}
              done: {type: say, text: "{{ context.name }} is {{ context.age }}."}
            """,
        )
    )
    assert await conversation.texts("hi") == ["Name?"]
    assert conversation.state.to_json() == {
        "context": {},
        "flow": "test",
        "waitingAt": "name",
        "reprompts": 0,
        "extra": {},
        "lastActive": NOW,
        "handover": None,
    }
    assert await conversation.texts("Ada") == ["Age, Ada?"]
    assert await conversation.texts("36") == ["Ada is 36."]
    assert conversation.state.to_json() == {
        "context": {"name": "Ada", "age": 36},
        "flow": None,
        "waitingAt": None,
        "reprompts": 0,
        "extra": {},
        "lastActive": NOW,
        "handover": None,
    }


async def test_input_state_is_not_mutated(tmp_path: Path) -> None:
    """``run_turn`` returns a new state and leaves the caller's state object untouched."""
    engine = engine_for(tmp_path, "nodes:\n  s: {type: set, context: {a: 1}}\n")
    state = SessionState(context={"b": 2}, extra={"k": "v"})
    result = await engine.run_turn("test", state, make_input("x"))
    assert state == SessionState(context={"b": 2}, extra={"k": "v"})
    assert result.state == SessionState(context={"b": 2, "a": 1}, extra={"k": "v"}, last_active=NOW)
    assert result.state.extra is not state.extra


async def test_step_limit_stops_endless_loops(tmp_path: Path) -> None:
    """A loop stops after ``max_steps`` nodes with one error output and a log naming the node."""
    engine = engine_for(
        tmp_path,
        """
        nodes:
          ping: {type: say, text: ping, next: pong}
          pong: {type: set, context: {n: "{{ (context.n or 0) + 1 }}"}, next: ping}
        """,
        max_steps=10,
    )
    state = SessionState(context={"kept": True})
    with capture_logs() as logs:
        result = await engine.run_turn("test", state, make_input("go"))
    assert result.outputs == [ERROR]
    assert result.state == SessionState(context={"kept": True}, last_active=NOW)
    assert logs == [
        {
            "event": "flow_step_limit",
            "flow": "test",
            "node": "ping",
            "max_steps": 10,
            "session_id": "session123",
            "log_level": "error",
        }
    ]


async def test_default_step_limit_is_1000(tmp_path: Path) -> None:
    """Without ``max_steps`` a turn may run exactly 1000 nodes, and fails at the 1001st."""
    source = """
    nodes:
      loop: {type: set, context: {n: "{{ (context.n or 0) + 1 }}"}, next: check}
      check: {type: if, condition: "context.n < input.text | int", then: loop}
    """
    engine = engine_for(tmp_path, source)
    ok = await engine.run_turn("test", SessionState(), make_input("500"))
    assert (ok.outputs, ok.state.context) == ([], {"n": 500})  # 500 loops = 1000 nodes
    failed = await engine.run_turn("test", SessionState(), make_input("501"))
    assert failed.outputs == [ERROR]


async def test_template_error_becomes_error_output(tmp_path: Path) -> None:
    """A failing template does not raise: one error output, the failure named with flow and
    node (for the runner's one log line), no waiting."""
    engine = engine_for(
        tmp_path,
        """
        nodes:
          ask: {type: question, text: "Number?", answer: number, store: n, next: store}
          store: {type: set, context: {partial: yes}, next: boom}
          boom: {type: say, text: "{{ context.n / 0 }}"}
        """,
    )
    state = SessionState(context={"before": 1}, flow="test", waiting_at="ask")
    result = await engine.run_turn("test", state, make_input("5"))
    assert result.outputs == [ERROR]
    # The whole turn is dropped: neither the answer nor the set node's value stays.
    assert result.state == SessionState(context={"before": 1}, last_active=NOW)
    assert result.failed_node == "test/boom"
    assert result.failure is not None
    assert result.failure.endswith("ZeroDivisionError: division by zero")


async def test_undefined_comparison_is_a_template_error(tmp_path: Path) -> None:
    """Comparing a missing context value is a template error, reported and not raised."""
    engine = engine_for(
        tmp_path,
        """
        nodes:
          check: {type: if, condition: "context.missing > 3", then: yes_node}
          yes_node: {type: say, text: "yes"}
        """,
    )
    result = await engine.run_turn("test", SessionState(), make_input("x"))
    assert result.outputs == [ERROR]
    assert result.failed_node == "test/check"
    assert result.failure is not None
    assert "test.yaml:2)" in result.failure  # the failing node's file and line


@pytest.mark.parametrize(
    "template",
    ["{{ input.text.__class__.__mro__ }}", "{{ context.update({'a': 1}) }}"],
)
async def test_sandbox_blocks_internals_and_mutation(tmp_path: Path, template: str) -> None:
    """Python internals and mutating methods are blocked: the turn fails with the error output."""
    engine = engine_for(tmp_path, f'nodes:\n  a: {{type: say, text: "{template}"}}\n')
    result = await engine.run_turn("test", SessionState(), make_input("x"))
    assert result.outputs == [ERROR]
    assert result.state.context == {}
    assert result.failure is not None
    assert ": SecurityError:" in result.failure


async def test_data_that_is_not_an_object_fails_the_turn(tmp_path: Path) -> None:
    """``data`` evaluating to a non-object at run time is a flow error, not a crash."""
    engine = engine_for(tmp_path, 'nodes:\n  a: {type: say, data: "{{ input.text }}"}\n')
    result = await engine.run_turn("test", SessionState(), make_input("x"))
    assert result.outputs == [ERROR]
    assert result.failure is not None
    assert result.failure.endswith("FlowRuntimeError: 'data' must evaluate to an object, got str")


async def test_unknown_flow_gives_error_output(tmp_path: Path) -> None:
    """Running a flow name that is not loaded logs and returns the error output, not raising."""
    engine = Engine(FlowRegistry.load(None))
    with capture_logs() as logs:
        result = await engine.run_turn("nope", SessionState(context={"a": 1}), make_input("x"))
    assert result.outputs == [ERROR]
    assert result.state.context == {"a": 1}
    assert logs[0]["event"] == "flow_unknown"


async def test_custom_error_output(tmp_path: Path) -> None:
    """The error output can be configured per engine."""
    engine = engine_for(
        tmp_path,
        'nodes:\n  a: {type: say, text: "{{ 1 / 0 }}"}\n',
        error_output=Output(text="Oops", data={"error": True}),
    )
    result = await engine.run_turn("test", SessionState(), make_input("x"))
    assert result.outputs == [Output(text="Oops", data={"error": True})]


async def test_waiting_position_of_another_flow_is_ignored(tmp_path: Path) -> None:
    """A session waiting in another flow (or at a node that no longer exists) starts afresh."""
    engine = engine_for(tmp_path, "nodes:\n  a: {type: say, text: start}\n")
    elsewhere = SessionState(flow="other", waiting_at="a", reprompts=1)
    gone = SessionState(flow="test", waiting_at="removed")
    for state in (elsewhere, gone):
        result = await engine.run_turn("test", state, make_input("x"))
        assert result.outputs == [Output(text="start")]
        assert result.state.waiting_at is None


def test_engine_lists_flows(tmp_path: Path) -> None:
    """``has_flow`` and ``flow_names`` reflect the registry, built-ins included."""
    engine = engine_for(tmp_path, "nodes:\n  a: {type: end}\n")
    assert engine.flow_names() == ["echo", "test"]
    assert engine.has_flow("test")
    assert not engine.has_flow("missing")


def test_max_steps_must_be_positive() -> None:
    """An engine cannot be built with a step limit below one."""
    with pytest.raises(ValueError, match="max_steps"):
        Engine(FlowRegistry.load(None), max_steps=0)


class SleepNode(Node):
    """A test node type that awaits, standing in for future HTTP/LLM nodes."""

    type_name = "sleep"
    is_async = True

    @classmethod
    def parse(cls, ctx: ParseContext) -> SleepNode:
        ctx.fields.string("next")
        return cls(ctx.node_id, ctx.line)

    def execute(self, run: TurnRun) -> str | None:
        raise AssertionError("the engine must call execute_async for async nodes")

    async def execute_async(self, run: TurnRun) -> str | None:
        await asyncio.sleep(0)
        run.emit(Output(text="slept"))
        return None


async def test_node_types_are_pluggable_and_may_be_async(tmp_path: Path) -> None:
    """A registry can add node types; the engine awaits nodes that declare ``is_async``."""
    write_flow(tmp_path, "nodes:\n  nap: {type: sleep}\n")
    registry = FlowRegistry.load(tmp_path, node_types=DEFAULT_NODE_TYPES.with_types(SleepNode))
    result = await Engine(registry).run_turn("test", SessionState(), make_input("x"))
    assert result.outputs == [Output(text="slept")]


def test_engine_and_flows_satisfy_the_contract() -> None:
    """``Engine`` is a ``FlowEngine`` and loaded flows are ``Flow``s (checked by mypy too)."""
    registry = FlowRegistry.load(None)
    engine: FlowEngine = Engine(registry)
    flow: Flow | None = registry.get("echo")
    assert engine.flow_names() == ["echo"]
    assert flow is not None
    assert flow.name == "echo"
