"""switch, goto, execute_flow, reset, handover, say variants and set profile."""

from __future__ import annotations

import random
from pathlib import Path

from flowhook.flows import Engine, FlowRegistry, SessionState

from .helpers import NOW, Conversation, engine_for, make_input, write_flow


async def test_switch_picks_the_matching_case_or_default(tmp_path: Path) -> None:
    """``switch`` compares the value as text with each case and falls back to ``default``."""
    engine = engine_for(
        tmp_path,
        """
        nodes:
          pick:
            type: switch
            value: input.text
            cases: {red: r, "3": three, "true": yes_case}
            default: other
          r: {type: say, text: "R"}
          three: {type: say, text: "3"}
          yes_case: {type: say, text: "T"}
          other: {type: say, text: "?"}
        """,
    )
    for text, expected in (("red", "R"), ("3", "3"), ("true", "T"), ("blue", "?")):
        assert [o.text for o in (await Conversation(engine).send(text))] == [expected]


async def test_switch_on_numbers_and_booleans(tmp_path: Path) -> None:
    """Numbers read as written and booleans as true/false; no default ends the turn."""
    engine = engine_for(
        tmp_path,
        """
        nodes:
          s: {type: set, context: {n: 3, b: false}, next: by_n}
          by_n: {type: switch, value: context.n, cases: {"3": by_b}}
          by_b: {type: switch, value: context.b, cases: {"false": done}}
          done: {type: say, text: "ok"}
        """,
    )
    assert await Conversation(engine).texts("x") == ["ok"]
    engine = engine_for(
        tmp_path,
        "nodes:\n  s: {type: switch, value: input.text, cases: {a: t}}\n  t: {type: say, text: A}\n",
    )
    assert await Conversation(engine).texts("zzz") == []


async def test_goto_a_node_of_the_same_flow(tmp_path: Path) -> None:
    """``goto`` with ``node`` continues at that node."""
    engine = engine_for(
        tmp_path,
        """
        nodes:
          a: {type: say, text: "one", next: jump}
          jump: {type: goto, node: c}
          c: {type: say, text: "two"}
        """,
    )
    assert await Conversation(engine).texts("x") == ["one", "two"]


async def test_goto_another_flow_does_not_come_back(tmp_path: Path) -> None:
    """``goto`` with ``flow`` continues in that flow (start node, or ``node``) and stays there."""
    write_flow(
        tmp_path,
        "nodes:\n  a: {type: say, text: other-start, next: b}\n  b: {type: say, text: other-b}\n",
        "other.yaml",
    )
    engine = engine_for(
        tmp_path,
        """
        nodes:
          a: {type: say, text: main, next: jump}
          jump: {type: goto, flow: other, node: b}
        """,
    )
    assert await Conversation(engine).texts("x") == ["main", "other-b"]


async def test_execute_flow_comes_back_to_next(tmp_path: Path) -> None:
    """``execute_flow`` runs the sub-flow to its end, then continues at its own ``next``."""
    write_flow(
        tmp_path,
        "nodes:\n  a: {type: set, context: {fromSub: 1}, next: b}\n  b: {type: say, text: in-sub}\n",
        "sub.yaml",
    )
    engine = engine_for(
        tmp_path,
        """
        nodes:
          call: {type: execute_flow, flow: sub, next: after}
          after: {type: say, text: "back {{ context.fromSub }}"}
        """,
    )
    assert await Conversation(engine).texts("x") == ["in-sub", "back 1"]


async def test_execute_flow_waits_inside_the_sub_flow_across_turns(tmp_path: Path) -> None:
    """A question in a sub-flow keeps the return point in the state; the answer comes back."""
    write_flow(
        tmp_path,
        "nodes:\n  ask: {type: question, text: 'Your name?', store: name}\n",
        "sub.yaml",
    )
    engine = engine_for(
        tmp_path,
        """
        nodes:
          call: {type: execute_flow, flow: sub, next: greet}
          greet: {type: say, text: "Hello {{ context.name }}"}
        """,
    )
    conversation = Conversation(engine)
    assert await conversation.texts("hi") == ["Your name?"]
    state = conversation.state
    assert (state.flow, state.waiting_at) == ("sub", "ask")
    assert state.extra == {"stack": [{"flow": "test", "node": "greet"}], "entryFlow": "test"}
    assert await conversation.texts("Ada") == ["Hello Ada"]
    assert conversation.state.extra == {}
    assert conversation.state.waiting_at is None


async def test_end_inside_a_sub_flow_ends_the_whole_turn(tmp_path: Path) -> None:
    """``end`` in a sub-flow ends the turn; the caller's ``next`` does not run."""
    write_flow(
        tmp_path,
        "nodes:\n  a: {type: say, text: sub, next: stop}\n  stop: {type: end}\n",
        "sub.yaml",
    )
    engine = engine_for(
        tmp_path,
        """
        nodes:
          call: {type: execute_flow, flow: sub, next: after}
          after: {type: say, text: "after"}
        """,
    )
    assert await Conversation(engine).texts("x") == ["sub"]


async def test_recursive_execute_flow_fails_the_turn(tmp_path: Path) -> None:
    """A flow executing itself without end stops at the nesting limit with the error output."""
    engine = engine_for(tmp_path, "nodes:\n  me: {type: execute_flow, flow: test}\n")
    assert await Conversation(engine).texts("x") == ["Sorry, something went wrong."]


async def test_waiting_in_another_flow_is_dropped_for_another_entry_flow(tmp_path: Path) -> None:
    """A session waiting in a sub-flow entered through flow A starts afresh when run as flow B."""
    write_flow(tmp_path, "nodes:\n  q: {type: question, text: 'Q?'}\n", "sub.yaml")
    write_flow(tmp_path, "nodes:\n  b: {type: say, text: 'B start'}\n", "b.yaml")
    engine = engine_for(tmp_path, "nodes:\n  call: {type: execute_flow, flow: sub}\n")
    conversation = Conversation(engine)
    assert await conversation.texts("x") == ["Q?"]
    result = await engine.run_turn("b", conversation.state, make_input("answer"))
    assert [o.text for o in result.outputs] == ["B start"]


async def test_reset_clears_the_session_but_keeps_the_profile(tmp_path: Path) -> None:
    """``reset`` empties context, return stack and handover; the profile is the user's."""
    engine = engine_for(
        tmp_path,
        """
        nodes:
          check: {type: if, condition: input.text == "reset", then: wipe, else: remember}
          remember: {type: set, context: {a: 1}, profile: {name: Ada}, next: agent}
          agent: {type: handover}
          wipe: {type: reset, next: tell}
          tell: {type: say, text: "a={{ context.a }} name={{ profile.name }}"}
        """,
    )
    first = await engine.run_turn("test", SessionState(), make_input("hi"))
    assert first.state.context == {"a": 1}
    assert first.state.handover is not None
    assert first.profile == {"name": "Ada"}
    state = SessionState.from_json(first.state.to_json())
    second = await engine.run_turn("test", state, make_input("reset", profile=first.profile))
    assert [o.text for o in second.outputs] == ["a= name=Ada"]
    assert second.state.context == {}
    assert second.state.handover is None
    assert second.profile is None


async def test_handover_marks_the_state(tmp_path: Path) -> None:
    """``handover`` sends its text and records when, where and why in the session state."""
    engine = engine_for(
        tmp_path,
        """
        nodes:
          h: {type: handover, text: "Connecting you", data: {queue: sales},
              reason: "asked for {{ input.text }}"}
        """,
    )
    result = await engine.run_turn("test", SessionState(), make_input("a human"))
    assert [(o.text, o.data) for o in result.outputs] == [("Connecting you", {"queue": "sales"})]
    assert result.state.handover == {
        "at": NOW,
        "flow": "test",
        "node": "h",
        "reason": "asked for a human",
        "data": {"queue": "sales"},
    }
    again = await engine.run_turn("test", result.state, make_input("x"))
    assert again.state.handover is not None
    assert SessionState.from_json(result.state.to_json()) == result.state


async def test_say_variants_are_picked_at_random(tmp_path: Path) -> None:
    """Each turn picks one variant with the engine's random source; node data goes along."""
    write_flow(
        tmp_path,
        """
        nodes:
          s:
            type: say
            data: {kind: greeting}
            variants:
              - "Hi {{ input.text }}"
              - "Hello {{ input.text }}"
              - {text: "Hey", data: {own: true}}
        """,
    )
    engine = Engine(FlowRegistry.load(tmp_path), rng=random.Random(3))
    seen = set()
    for _ in range(40):
        result = await engine.run_turn("test", SessionState(), make_input("Ada"))
        (output,) = result.outputs
        seen.add((output.text, tuple(sorted(output.data))))
    assert seen == {("Hi Ada", ("kind",)), ("Hello Ada", ("kind",)), ("Hey", ("own",))}


async def test_set_profile_returns_the_new_profile(tmp_path: Path) -> None:
    """``set`` with ``profile`` changes the profile the result carries; reads see it at once."""
    engine = engine_for(
        tmp_path,
        """
        nodes:
          s: {type: set, profile: {visits: "{{ (profile.visits or 0) + 1 }}"}, next: t}
          t: {type: say, text: "visit {{ profile.visits }}"}
        """,
    )
    turn = make_input("x", profile={"visits": 4, "name": "Ada"})
    result = await engine.run_turn("test", SessionState(), turn)
    assert [o.text for o in result.outputs] == ["visit 5"]
    assert result.profile == {"visits": 5, "name": "Ada"}
    assert turn.profile == {"visits": 4, "name": "Ada"}


async def test_unchanged_profile_is_none(tmp_path: Path) -> None:
    """A turn that does not change the profile returns ``profile=None``."""
    engine = engine_for(tmp_path, "nodes:\n  s: {type: say, text: '{{ profile.name }}'}\n")
    result = await engine.run_turn("test", SessionState(), make_input("x", profile={"name": "A"}))
    assert [o.text for o in result.outputs] == ["A"]
    assert result.profile is None


async def test_failed_turn_keeps_the_profile_unchanged(tmp_path: Path) -> None:
    """A failing turn drops profile changes made before the failure."""
    engine = engine_for(
        tmp_path,
        """
        nodes:
          s: {type: set, profile: {a: 1}, next: boom}
          boom: {type: say, text: "{{ 1 / 0 }}"}
        """,
    )
    result = await engine.run_turn("test", SessionState(), make_input("x", profile={"a": 0}))
    assert result.profile is None
    assert [o.text for o in result.outputs] == ["Sorry, something went wrong."]
