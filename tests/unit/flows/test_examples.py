"""The example flows under examples/ hold the conversations their comments promise."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from flowhook.flows import Engine, FlowRegistry, validate_path
from flowhook.flows.resources import EngineResources, LlmDefaults
from tests.support.outbound import loopback

from .fakes import FakeServer, serve
from .helpers import Conversation

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def test_examples_are_valid() -> None:
    """Every example flow loads without a problem."""
    assert validate_path(EXAMPLES) == []
    assert {"faq", "llm-agent", "order-api"} <= set(FlowRegistry.load(EXAMPLES).names())


@pytest.fixture
async def servers() -> AsyncIterator[tuple[FakeServer, FakeServer]]:
    async with serve("orders") as orders, serve("openai") as openai:
        yield orders, openai


@pytest.fixture
async def engine(servers: tuple[FakeServer, FakeServer]) -> AsyncIterator[Engine]:
    orders, openai = servers
    resources = EngineResources(
        http_timeout=2,
        llm=LlmDefaults(base_url=openai.url, model="fake", timeout=0.3),
        environ={},
        http_policy=loopback("http node"),
        llm_policy=loopback("llm node"),
    )
    engine = Engine(
        FlowRegistry.load(EXAMPLES), config={"ordersApi": orders.url}, resources=resources
    )
    yield engine
    await engine.aclose()


async def test_order_api_example(engine: Engine) -> None:
    """order-api asks for the number, looks the order up and tells its status."""
    chat = Conversation(engine, "order-api")
    assert await chat.texts("where is my order?") == ["Sure! What is your order number?"]
    assert await chat.texts("It's 12345") == [
        "Order 12345 is shipped. It should arrive on 2024-05-03."
    ]
    chat = Conversation(engine, "order-api")
    await chat.send("hi")
    assert await chat.texts("777") == ["Order 777 is being prepared and will ship soon."]


async def test_order_api_example_failures(
    engine: Engine, servers: tuple[FakeServer, FakeServer]
) -> None:
    """An unknown order is reported; a failing API leads to an offer and a handover."""
    chat = Conversation(engine, "order-api")
    await chat.send("hi")
    assert await chat.texts("404404") == [
        "I couldn't find order 404404. Please check the number and write to me again."
    ]
    servers[0].mode = "error"
    chat = Conversation(engine, "order-api")
    await chat.send("hi")
    assert await chat.texts("12345") == [
        "Sorry, I can't reach the order system right now. Shall I connect you with a colleague?"
    ]
    assert await chat.texts("yes") == ["Connecting you with a colleague. One moment please."]
    assert chat.state.handover is not None
    assert chat.state.handover["reason"] == "order lookup failed for 12345"


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("when are you open?", "We are open Monday to Friday, 9:00 to 18:00."),
        (
            "are you open on Sunday?",
            "Sorry, we are closed on Sunday. We are open Monday to Friday, 9:00 to 18:00.",
        ),
        (
            "how do I send something back",
            "You can return any item within 30 days. Start a return from your order page.",
        ),
        (
            "can i get a refnd",
            "You can return any item within 30 days. Start a return from your order page.",
        ),
        ("I'd like to speak to a person", "I'll connect you with a colleague."),
        (
            "tell me a joke about penguins",
            "Sorry, I don't know that one yet. I can help with opening hours, returns and shipping.",
        ),
    ],
)
async def test_faq_example(engine: Engine, text: str, answer: str) -> None:
    """faq answers by intent (typos included) and falls back for unknown questions."""
    assert await Conversation(engine, "faq").texts(text) == [answer]


async def test_faq_shipping_variants(engine: Engine) -> None:
    """The shipping answer is one of its two variants."""
    (text,) = await Conversation(engine, "faq").texts("how much is shipping?")
    assert text is not None
    assert "4.90 EUR" in text


async def test_llm_agent_example(engine: Engine, servers: tuple[FakeServer, FakeServer]) -> None:
    """llm-agent answers with the LLM; failures get a fixed answer, then a handover."""
    openai = servers[1]
    openai.answers = ["We ship in 2 days."]
    chat = Conversation(engine, "llm-agent")
    assert await chat.texts("How fast do you ship?") == ["We ship in 2 days."]
    openai.mode = "error"
    assert await chat.texts("And returns?") == [
        "Sorry, I can't answer right now. Could you ask again in a moment?"
    ]
    assert await chat.texts("Hello?") == [
        "I'm having trouble answering. Let me connect you with a colleague."
    ]
    assert chat.state.handover is not None
    assert await chat.texts("start over") == ["Let's start over. How can I help?"]
    assert chat.state.handover is None
    assert chat.state.context == {}
