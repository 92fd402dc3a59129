"""Which flows touch the user's profile: decided from the loaded flows, erring towards yes."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowhook.flows.engine import Engine
from flowhook.flows.profile_use import profile_flows
from flowhook.flows.registry import FlowRegistry

FLOWS = {
    "plain": """
name: plain
nodes:
  a: {type: if, condition: "context.x == 1", then: b, else: b}
  b: {type: say, text: "hi {{ input.text }} {{ context.name }}", data: "{{ input.data }}"}
""",
    "says-profile": """
name: says-profile
nodes:
  a: {type: say, text: "hello {{ profile.name }}"}
""",
    "block-profile": """
name: block-profile
nodes:
  a: {type: say, text: "{% if profile %}known{% endif %}"}
""",
    "condition-profile": """
name: condition-profile
nodes:
  a: {type: if, condition: "profile.vip", then: b, else: b}
  b: {type: say, text: "ok"}
""",
    "sets-profile": """
name: sets-profile
nodes:
  a: {type: set, profile: {seen: true}}
""",
    "sets-context": """
name: sets-context
nodes:
  a: {type: set, context: {seen: true}}
""",
    "calls-code": """
name: calls-code
nodes:
  a: {type: code, function: "json:dumps"}
""",
    "goes-to-profile": """
name: goes-to-profile
nodes:
  a: {type: goto, flow: says-profile}
""",
    "executes-goes-to": """
name: executes-goes-to
nodes:
  a: {type: execute_flow, flow: goes-to-profile, next: b}
  b: {type: say, text: "back"}
""",
    "loop-a": """
name: loop-a
nodes:
  a: {type: goto, flow: loop-b}
""",
    "loop-b": """
name: loop-b
nodes:
  a: {type: say, text: "b", next: c}
  c: {type: goto, flow: loop-a}
""",
}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> FlowRegistry:
    folder: Path = tmp_path_factory.mktemp("flows")
    for name, text in FLOWS.items():
        (folder / f"{name}.yaml").write_text(text)
    return FlowRegistry.load(folder)


def test_flows_that_name_set_or_reach_the_profile_are_the_ones_ordered(
    registry: FlowRegistry,
) -> None:
    """Flows whose templates, conditions or set nodes name ``profile``, flows with code
    nodes, and flows that reach such a flow (goto/execute_flow, transitively) touch the
    profile; the rest (echo, order-help, context-only flows, cycles among them) do not."""
    touching = profile_flows({n: registry[n] for n in registry.names()})
    assert touching == {
        "says-profile",
        "block-profile",
        "condition-profile",
        "sets-profile",
        "calls-code",
        "goes-to-profile",
        "executes-goes-to",
    }
    assert "echo" not in touching


def test_engine_answers_for_unknown_flows_with_yes(registry: FlowRegistry) -> None:
    """The engine reports the decision per flow; an unknown flow counts as touching the
    profile, and swapping the flows changes the generation a turn checks."""
    engine = Engine(registry)
    assert engine.reads_profile("sets-profile")
    assert not engine.reads_profile("echo")
    assert engine.reads_profile("no-such-flow")
    before = engine.registry_generation
    engine.use_registry(registry)
    assert engine.registry_generation != before
