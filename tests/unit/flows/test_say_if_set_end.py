"""The simple nodes: say, if, set and end."""

from __future__ import annotations

from pathlib import Path

from flowhook.flows import Output

from .helpers import Conversation, engine_for


async def test_say_outputs_text_and_data_then_follows_next(tmp_path: Path) -> None:
    """A say node emits one output with rendered text and data, then runs its ``next``."""
    engine = engine_for(
        tmp_path,
        """
        nodes:
          greet:
            type: say
            text: "Hi {{ input.userId }}!"
            data: {kind: greeting, session: "{{ input.sessionId }}", n: 3, flags: [true, null]}
            next: second
          second: {type: say, text: "Second"}
        """,
    )
    outputs = await Conversation(engine).send("hello")
    assert outputs == [
        Output(
            text="Hi user123!",
            data={"kind": "greeting", "session": "session123", "n": 3, "flags": [True, None]},
        ),
        Output(text="Second", data={}),
    ]


async def test_say_text_that_renders_empty_gives_no_text(tmp_path: Path) -> None:
    """A say text rendering to an empty string becomes ``text=None`` (no empty message)."""
    engine = engine_for(
        tmp_path,
        """
        nodes:
          maybe: {type: say, text: "{{ context.missing }}", data: {x: 1}}
        """,
    )
    assert await Conversation(engine).send("hi") == [Output(text=None, data={"x": 1})]


async def test_say_data_single_expression_keeps_native_value(tmp_path: Path) -> None:
    """``data: "{{ input.data }}"`` passes the input's data object through unchanged."""
    engine = engine_for(tmp_path, 'nodes:\n  a: {type: say, data: "{{ input.data }}"}\n')
    data = {"order": {"id": 7, "items": ["a", "b"]}, "ok": True}
    assert await Conversation(engine).send(None, data) == [Output(text=None, data=data)]


async def test_if_takes_then_or_else(tmp_path: Path) -> None:
    """``if`` evaluates its condition against the input and goes to ``then`` or ``else``."""
    engine = engine_for(
        tmp_path,
        """
        nodes:
          check:
            type: if
            condition: "input.text | int > 10"
            then: big
            else: small
          big: {type: say, text: big}
          small: {type: say, text: small}
        """,
    )
    conversation = Conversation(engine)
    assert await conversation.texts("11") == ["big"]
    assert await conversation.texts("10") == ["small"]


async def test_if_without_else_ends_the_turn_when_false(tmp_path: Path) -> None:
    """A missing branch of ``if`` ends the turn, like a missing ``next``."""
    engine = engine_for(
        tmp_path,
        """
        nodes:
          check: {type: if, condition: "input.text == 'go'", then: went}
          went: {type: say, text: went}
        """,
    )
    conversation = Conversation(engine)
    assert await conversation.texts("stop") == []
    assert await conversation.texts("go") == ["went"]


async def test_set_stores_native_values_in_order(tmp_path: Path) -> None:
    """``set`` stores values in the context in file order; later entries see earlier ones."""
    engine = engine_for(
        tmp_path,
        """
        nodes:
          store:
            type: set
            context:
              count: "{{ input.text | int }}"
              double: "{{ context.count * 2 }}"
              label: "n={{ context.count }}"
              status: shipped
              nested: {values: ["{{ context.count }}", 2]}
        """,
    )
    conversation = Conversation(engine)
    assert await conversation.send("21") == []
    assert conversation.state.context == {
        "count": 21,
        "double": 42,
        "label": "n=21",
        "status": "shipped",
        "nested": {"values": [21, 2]},
    }


async def test_context_persists_across_turns(tmp_path: Path) -> None:
    """Values set in one turn are visible to templates in the next turn of the session."""
    engine = engine_for(
        tmp_path,
        """
        nodes:
          count:
            type: set
            context: {visits: "{{ (context.visits or 0) + 1 }}"}
            next: tell
          tell: {type: say, text: "Visit {{ context.visits }}"}
        """,
    )
    conversation = Conversation(engine)
    assert await conversation.texts("a") == ["Visit 1"]
    assert await conversation.texts("b") == ["Visit 2"]


async def test_end_stops_the_turn(tmp_path: Path) -> None:
    """``end`` ends the turn; nothing after it runs and the session does not wait."""
    engine = engine_for(
        tmp_path,
        """
        nodes:
          first: {type: say, text: one, next: stop}
          stop: {type: end}
        """,
    )
    conversation = Conversation(engine)
    assert await conversation.texts("x") == ["one"]
    assert conversation.state.waiting_at is None
