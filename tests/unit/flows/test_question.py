"""The question node: asking, waiting, storing answers, reprompts and the fallback."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowhook.flows import Output

from .helpers import Conversation, engine_for

ASK_NUMBER = """
nodes:
  ask:
    type: question
    text: "Your order number?"
    data: {buttons: [cancel]}
    answer: number
    store: orderNumber
    reprompt: "Digits only, please. Your order number?"
    max_reprompts: 2
    fallback: give_up
    next: thanks
  thanks: {type: say, text: "Order {{ context.orderNumber }}, thanks."}
  give_up: {type: say, text: "Let's try again later."}
"""


async def test_question_asks_and_waits(tmp_path: Path) -> None:
    """Reaching a question outputs its text and data and stops the turn waiting there."""
    conversation = Conversation(engine_for(tmp_path, ASK_NUMBER))
    assert await conversation.send("hi") == [
        Output(text="Your order number?", data={"buttons": ["cancel"]})
    ]
    state = conversation.state
    assert (state.waiting_at, state.flow, state.reprompts) == ("ask", "test", 0)


async def test_valid_answer_is_stored_and_flow_goes_on(tmp_path: Path) -> None:
    """A valid answer is parsed, stored under ``store`` and the turn continues at ``next``."""
    conversation = Conversation(engine_for(tmp_path, ASK_NUMBER))
    await conversation.send("hi")
    assert await conversation.texts("it is 4711") == ["Order 4711, thanks."]
    state = conversation.state
    assert state.context == {"orderNumber": 4711}
    assert (state.waiting_at, state.flow, state.reprompts) == (None, None, 0)


async def test_invalid_answer_reprompts_and_counts(tmp_path: Path) -> None:
    """An invalid answer sends the reprompt (with the question's data) and keeps waiting."""
    conversation = Conversation(engine_for(tmp_path, ASK_NUMBER))
    await conversation.send("hi")
    assert await conversation.send("no idea") == [
        Output(text="Digits only, please. Your order number?", data={"buttons": ["cancel"]})
    ]
    assert (conversation.state.waiting_at, conversation.state.reprompts) == ("ask", 1)
    await conversation.send("still no idea")
    assert (conversation.state.waiting_at, conversation.state.reprompts) == ("ask", 2)


async def test_reprompts_exhausted_go_to_fallback(tmp_path: Path) -> None:
    """With ``max_reprompts: 2`` the third invalid answer goes to ``fallback`` and stops waiting."""
    conversation = Conversation(engine_for(tmp_path, ASK_NUMBER))
    await conversation.send("hi")
    assert await conversation.texts("a") == ["Digits only, please. Your order number?"]
    assert await conversation.texts("b") == ["Digits only, please. Your order number?"]
    assert await conversation.texts("c") == ["Let's try again later."]
    state = conversation.state
    assert (state.waiting_at, state.reprompts, state.context) == (None, 0, {})
    # The next input starts the flow again from its start node.
    assert await conversation.texts("d") == ["Your order number?"]


async def test_valid_answer_after_reprompt_resets_count(tmp_path: Path) -> None:
    """A valid answer after failures continues normally and clears the reprompt count."""
    conversation = Conversation(engine_for(tmp_path, ASK_NUMBER))
    await conversation.send("hi")
    await conversation.send("nope")
    assert await conversation.texts("12") == ["Order 12, thanks."]
    assert conversation.state.reprompts == 0


async def test_without_reprompt_the_question_is_asked_again(tmp_path: Path) -> None:
    """Without ``reprompt`` an invalid answer repeats the question; without a limit, forever."""
    conversation = Conversation(
        engine_for(
            tmp_path,
            """
            nodes:
              ask: {type: question, text: "Email?", answer: email, store: mail}
            """,
        )
    )
    await conversation.send("hi")
    for attempt in range(1, 6):
        assert await conversation.texts("nope") == ["Email?"]
        assert conversation.state.reprompts == attempt
    assert await conversation.texts("me@example.org") == []
    assert conversation.state.context == {"mail": "me@example.org"}


async def test_max_reprompts_zero_falls_back_at_once(tmp_path: Path) -> None:
    """``max_reprompts: 0`` sends the first invalid answer straight to the fallback."""
    conversation = Conversation(
        engine_for(
            tmp_path,
            """
            nodes:
              ask: {type: question, text: "y/n?", answer: yes_no, max_reprompts: 0,
                    fallback: bye}
              bye: {type: say, text: bye}
            """,
        )
    )
    await conversation.send("hi")
    assert await conversation.texts("maybe") == ["bye"]


async def test_input_without_text_is_an_invalid_answer(tmp_path: Path) -> None:
    """An input with data but no text does not answer a question: it reprompts."""
    conversation = Conversation(engine_for(tmp_path, ASK_NUMBER))
    await conversation.send("hi")
    assert await conversation.texts(None, {"x": 1}) == ["Digits only, please. Your order number?"]


@pytest.mark.parametrize(
    ("answer_yaml", "text", "stored"),
    [
        ("answer: text", "  Ada Lovelace ", "Ada Lovelace"),
        ("answer: number", "order #12345.", 12345),
        ("answer: number", "2.5 kg", 2.5),
        ("answer: yes_no", "Yes please", True),
        ("answer: yes_no", "nope", False),
        ("answer: email", "write to Ada@Example.org!", "Ada@Example.org"),
        ("answer: regex\n    pattern: '^[A-Z]{2}\\d{4}$'", "AB1234", "AB1234"),
        ("answer: choice\n    choices: [Small, Large]", "large!", "Large"),
        ("answer: choice\n    choices: [Small, Large]", "2", "Large"),
    ],
)
async def test_each_answer_type_stores_its_value(
    tmp_path: Path, answer_yaml: str, text: str, stored: object
) -> None:
    """Every answer type parses a valid answer into the value stored in the context."""
    source = f"""
nodes:
  ask:
    type: question
    text: "?"
    {answer_yaml}
    store: value
"""
    conversation = Conversation(engine_for(tmp_path, source))
    await conversation.send("start")
    assert await conversation.send(text) == []
    assert conversation.state.context == {"value": stored}
    assert type(conversation.state.context["value"]) is type(stored)
