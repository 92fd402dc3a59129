"""The http and llm nodes against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from flowhook.flows import Engine, FlowRegistry, SessionState
from flowhook.flows.resources import EngineResources, LlmDefaults
from tests.support.outbound import loopback

from .fakes import FakeServer, serve
from .helpers import Conversation, make_input, write_flow


@pytest.fixture
async def orders() -> AsyncIterator[FakeServer]:
    async with serve("orders") as server:
        yield server


@pytest.fixture
async def openai() -> AsyncIterator[FakeServer]:
    async with serve("openai") as server:
        yield server


HTTP_FLOW = """
nodes:
  call:
    type: http
    method: "{{ input.data.method or 'GET' }}"
    url: "{{ config.api }}/orders/{{ input.text }}"
    headers: {X-Trace: "{{ input.traceId }}"}
    query: {lang: en}
    body: "{{ input.data.body }}"
    timeout: 0.3
    store: order
    next: ok
    error: failed
  ok: {type: say, text: "{{ context.order.status }}", data: "{{ context.order }}"}
  failed: {type: say, text: "failed {{ context.httpError.status }}: {{ context.httpError.message }}"}
"""


def http_engine(tmp_path: Path, server: FakeServer, flow: str = HTTP_FLOW) -> Engine:
    write_flow(tmp_path, flow)
    resources = EngineResources(http_policy=loopback("http node"))
    return Engine(FlowRegistry.load(tmp_path), config={"api": server.url}, resources=resources)


async def test_http_stores_the_json_reply(tmp_path: Path, orders: FakeServer) -> None:
    """A 2xx JSON reply is stored under ``store``; method, URL, headers, query are templated."""
    engine = http_engine(tmp_path, orders)
    try:
        conversation = Conversation(engine)
        outputs = await conversation.send("12345")
        assert [(o.text, o.data) for o in outputs] == [
            ("shipped", {"number": "12345", "status": "shipped", "eta": "2024-05-03"})
        ]
        (request,) = orders.requests
        assert (request["method"], request["path"], request["query"]) == (
            "GET",
            "/orders/12345",
            {"lang": "en"},
        )
        assert request["headers"]["X-Trace"] == "trace-1"
        await conversation.send("777", {"method": "POST", "body": {"note": "hi"}})
        assert orders.requests[1]["method"] == "POST"
        assert orders.requests[1]["json"] == {"note": "hi"}
    finally:
        await engine.aclose()


async def test_http_error_status_goes_to_error(tmp_path: Path, orders: FakeServer) -> None:
    """A non-2xx reply goes to ``error`` with the status in ``context.httpError``."""
    engine = http_engine(tmp_path, orders)
    try:
        assert await Conversation(engine).texts("999") == ["failed 404: status 404"]
        orders.mode = "error"
        assert await Conversation(engine).texts("12345") == ["failed 500: status 500"]
    finally:
        await engine.aclose()


async def test_http_timeout_goes_to_error(tmp_path: Path, orders: FakeServer) -> None:
    """A server that does not answer within ``timeout`` sends the flow to ``error``."""
    orders.mode = "hang"
    engine = http_engine(tmp_path, orders)
    try:
        assert await Conversation(engine).texts("12345") == ["failed : no reply within 0.3 s"]
    finally:
        await engine.aclose()


async def test_http_connection_refused_without_error_branch_fails(
    tmp_path: Path, orders: FakeServer
) -> None:
    """Without ``error``, a failed call fails the turn with the error output."""
    flow = "nodes:\n  call: {type: http, url: 'http://127.0.0.1:1/x', timeout: 2}\n"
    engine = http_engine(tmp_path, orders, flow)
    try:
        result = await engine.run_turn("test", SessionState(), make_input("x"))
        assert [o.text for o in result.outputs] == ["Sorry, something went wrong."]
    finally:
        await engine.aclose()


async def test_engine_shares_one_http_session(tmp_path: Path, orders: FakeServer) -> None:
    """All calls go through one pooled client session, closed by ``aclose``."""
    engine = http_engine(tmp_path, orders)
    await Conversation(engine).send("12345")
    session = engine.resources.http_session()
    await Conversation(engine).send("777")
    assert engine.resources.http_session() is session
    await engine.aclose()
    assert session.closed


LLM_FLOW = """
nodes:
  ask:
    type: llm
    system: "You help {{ profile.name }}."
    history: 3
    timeout: 0.3
    next: done
    error: failed
  done: {type: end}
  failed: {type: say, text: "llm failed: {{ context.llmError.message }}"}
"""


def llm_engine(tmp_path: Path, server: FakeServer, flow: str = LLM_FLOW, **env: str) -> Engine:
    write_flow(tmp_path, flow)
    resources = EngineResources(
        llm=LlmDefaults(base_url=server.url, model="fake-1", api_key_env="TEST_LLM_KEY"),
        environ=env,
        llm_policy=loopback("llm node"),
    )
    return Engine(FlowRegistry.load(tmp_path), resources=resources)


async def test_llm_says_the_answer_with_history(tmp_path: Path, openai: FakeServer) -> None:
    """The llm node sends system prompt, the last N transcript messages and the API key."""
    engine = llm_engine(tmp_path, openai, TEST_LLM_KEY="sk-test")
    openai.answers = ["Hello!", "Fine."]
    try:
        conversation = Conversation(engine)
        assert await conversation.texts("hi") == ["Hello!"]
        assert await conversation.texts("how are you?") == ["Fine."]
        first, second = openai.requests
        assert first["headers"]["Authorization"] == "Bearer sk-test"
        assert first["json"]["model"] == "fake-1"
        assert first["json"]["messages"] == [
            {"role": "system", "content": "You help ."},
            {"role": "user", "content": "hi"},
        ]
        assert second["json"]["messages"][1:] == [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "how are you?"},
        ]
        assert conversation.state.extra["transcript"][-1] == {
            "role": "assistant",
            "content": "Fine.",
        }
    finally:
        await engine.aclose()


async def test_llm_transcript_is_bounded(tmp_path: Path, openai: FakeServer) -> None:
    """The stored transcript keeps at most ``transcript_limit`` messages."""
    write_flow(tmp_path, LLM_FLOW)
    resources = EngineResources(
        llm=LlmDefaults(base_url=openai.url, model="m"),
        environ={},
        llm_policy=loopback("llm node"),
    )
    engine = Engine(FlowRegistry.load(tmp_path), resources=resources, transcript_limit=4)
    try:
        conversation = Conversation(engine)
        for text in ("one", "two", "three"):
            await conversation.send(text)
        assert [m["content"] for m in conversation.state.extra["transcript"]] == [
            "two",
            "echo: two",
            "three",
            "echo: three",
        ]
        assert "Authorization" not in openai.requests[0]["headers"]
    finally:
        await engine.aclose()


async def test_llm_store_and_prompt(tmp_path: Path, openai: FakeServer) -> None:
    """With ``store`` the answer goes to the context, not to the user; ``prompt`` is appended."""
    flow = """
    nodes:
      classify: {type: llm, prompt: "Classify: {{ input.text }}", history: 0,
                 model: other-model, store: label, next: tell}
      tell: {type: say, text: "label={{ context.label }}"}
    """
    engine = llm_engine(tmp_path, openai, flow)
    try:
        assert await Conversation(engine).texts("my card broke") == [
            "label=echo: Classify: my card broke"
        ]
        assert openai.requests[0]["json"]["model"] == "other-model"
        assert openai.requests[0]["json"]["messages"] == [
            {"role": "user", "content": "Classify: my card broke"}
        ]
    finally:
        await engine.aclose()


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("error", 'llm failed: status 500: {"error": "boom"}'),
        ("hang", "llm failed: no reply within 0.3 s"),
        ("bad", "llm failed: the reply has no choices[0].message.content"),
    ],
)
async def test_llm_failures_go_to_error(
    tmp_path: Path, openai: FakeServer, mode: str, message: str
) -> None:
    """Error replies, timeouts and replies without an answer go to ``error``."""
    openai.mode = mode
    engine = llm_engine(tmp_path, openai)
    try:
        assert await Conversation(engine).texts("hi") == [message]
    finally:
        await engine.aclose()


async def test_llm_without_base_url_fails_the_turn(tmp_path: Path) -> None:
    """An llm node with no base URL or model anywhere fails the turn clearly."""
    write_flow(tmp_path, LLM_FLOW)
    engine = Engine(FlowRegistry.load(tmp_path))
    result = await engine.run_turn("test", SessionState(), make_input("hi"))
    assert [o.text for o in result.outputs] == ["Sorry, something went wrong."]
    await engine.aclose()


async def test_no_transcript_without_llm_nodes(tmp_path: Path) -> None:
    """Flows without llm nodes keep no transcript in the session state."""
    write_flow(tmp_path, "nodes:\n  s: {type: say, text: hi}\n")
    engine = Engine(FlowRegistry.load(tmp_path))
    result = await engine.run_turn("test", SessionState(), make_input("hello"))
    assert result.state.extra == {}
