"""The example flow flows/order-help.yaml, run as the conversations the README shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowhook.flows import Engine, FlowRegistry, Output, validate_path

from .helpers import Conversation

FLOWS_DIR = Path(__file__).resolve().parents[3] / "flows"


@pytest.fixture
def conversation() -> Conversation:
    return Conversation(Engine(FlowRegistry.load(FLOWS_DIR)), "order-help")


def test_example_flows_are_valid() -> None:
    """Every file in the repository's flows/ directory validates without problems."""
    assert validate_path(FLOWS_DIR) == []


async def test_happy_path(conversation: Conversation) -> None:
    """Greeting -> order number -> yes: the tracking details are promised and remembered."""
    assert await conversation.send("Hello, I need help with my order") == [
        Output(text="I'd be happy to help. Could you please provide your order number?")
    ]
    assert await conversation.send("It's 12345") == [
        Output(
            text="Thanks! I found order 12345. Do you want me to send tracking details "
            "to your email on file?",
            data={"orderNumber": 12345, "quickReplies": ["Yes", "No"]},
        )
    ]
    assert await conversation.send("Yes please") == [
        Output(
            text="Done! The tracking details for order 12345 are on their way to your email.",
            data={"action": "send_tracking", "orderNumber": 12345},
        )
    ]
    assert conversation.state.context == {
        "orderNumber": 12345,
        "sendTracking": True,
        "trackingSentFor": 12345,
    }
    assert conversation.state.waiting_at is None


async def test_no_thanks(conversation: Conversation) -> None:
    """Answering no to the tracking offer ends politely without sending anything."""
    await conversation.send("Hi")
    await conversation.send("98765")
    assert await conversation.texts("No thanks") == [
        "No problem. Is there anything else I can help you with?"
    ]
    assert "trackingSentFor" not in conversation.state.context


async def test_reprompts_then_gives_up(conversation: Conversation) -> None:
    """Two reprompts for a missing order number, then the fallback; the next input restarts."""
    await conversation.send("Hello")
    reprompt = "Order numbers are digits only, for example 12345. What is your order number?"
    assert await conversation.texts("I don't know") == [reprompt]
    assert await conversation.texts("somewhere") == [reprompt]
    assert await conversation.texts("no idea") == [
        "Sorry, I still couldn't find an order number. Please check your order "
        "confirmation e-mail and write to me again."
    ]
    assert await conversation.texts("Hello again") == [
        "I'd be happy to help. Could you please provide your order number?"
    ]


async def test_unclear_yes_no_is_reprompted_once(conversation: Conversation) -> None:
    """An unclear answer to the tracking offer gets one reprompt, then the flow moves on."""
    await conversation.send("Hello")
    await conversation.send("555")
    assert await conversation.texts("hmm") == [
        "Please answer yes or no: shall I e-mail the tracking details for order 555?"
    ]
    assert await conversation.texts("whatever") == [
        "No problem. Is there anything else I can help you with?"
    ]
