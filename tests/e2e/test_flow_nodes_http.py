"""Multi-turn conversations with the new nodes through the real server, end to end:
intents, switch, http against a real orders API, sub-flows waiting across turns."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.receiver import Receiver
from tests.support.server import RunningServer, running_server
from tests.unit.flows.fakes import FakeServer, serve

REPO = Path(__file__).resolve().parents[2]

LOOKUP_FLOW = """
name: lookup
nodes:
  ask: {type: execute_flow, flow: ask-number, next: call}
  call:
    type: http
    url: "API/orders/{{ context.orderNumber }}"
    timeout: 5
    store: order
    next: tell
    error: failed
  tell: {type: say, text: "Order {{ context.orderNumber }}: {{ context.order.status }}"}
  failed: {type: say, text: "Lookup failed ({{ context.httpError.status }})"}
"""

ASK_FLOW = """
name: ask-number
nodes:
  q: {type: question, text: "Order number?", answer: number, store: orderNumber,
      reprompt: "Digits please."}
"""


@pytest.fixture
async def orders() -> AsyncIterator[FakeServer]:
    async with serve("orders") as server:
        yield server


@pytest.fixture
async def flow_server(
    tmp_path: Path, db_url: str, orders: FakeServer
) -> AsyncIterator[RunningServer]:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "faq.yaml").write_text((REPO / "examples" / "faq.yaml").read_text())
    (flows / "lookup.yaml").write_text(LOOKUP_FLOW.replace("API", orders.url))
    (flows / "ask-number.yaml").write_text(ASK_FLOW)
    async with running_server(tmp_path, db_url, flows_dir=flows) as server:
        try:
            yield server
        finally:
            # The engine's HTTP client (used by the http node) is the engine's to close.
            await server.services.engine.aclose()


async def converse(
    server: RunningServer, receiver: Receiver, flow: str, texts: list[str]
) -> list[str | None]:
    endpoint = await server.create_endpoint(name=f"ep-{flow}", flow=flow, webhookUrl=receiver.url)
    for number, text in enumerate(texts, 1):
        status, _ = await server.post_message(
            endpoint, {"userId": "u1", "sessionId": "s1", "text": text}
        )
        assert status == 202
        await receiver.wait_for(number)
    return [d.body["AIOutput"]["text"] for d in receiver.deliveries]


async def test_faq_intents_through_the_server(
    flow_server: RunningServer, receiver: Receiver
) -> None:
    """Each input is matched to an intent by the built-in NLU and answered by the flow."""
    texts = await converse(
        flow_server, receiver, "faq", ["when are you open?", "can i get a refund"]
    )
    assert texts == [
        "We are open Monday to Friday, 9:00 to 18:00.",
        "You can return any item within 30 days. Start a return from your order page.",
    ]


async def test_sub_flow_question_and_http_lookup_across_turns(
    flow_server: RunningServer, receiver: Receiver, orders: FakeServer
) -> None:
    """A sub-flow's question waits across turns (state stored by the server), then the
    caller looks the order up over HTTP and answers; a reprompt comes in between."""
    texts = await converse(flow_server, receiver, "lookup", ["hi", "no idea", "12345"])
    assert texts == ["Order number?", "Digits please.", "Order 12345: shipped"]
    assert [r["path"] for r in orders.requests] == ["/orders/12345"]
