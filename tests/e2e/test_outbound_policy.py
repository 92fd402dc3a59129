"""Through the real server: translation, NLU connectors and the http node reach no
internal service unless their own allowlist names it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.receiver import Receiver
from tests.support.server import RunningServer, running_server
from tests.unit.translation.fakes import FakeApi, dictionary_deepl, fake_api, reply

KEY_ENV = "FLOWHOOK_TEST_DEEPL_KEY"
TABLE = {
    "Hallo Welt": ("DE", "Hello world"),
    "You said: Hallo Welt": ("EN", "internal service answer"),
    "You said: Hello world": ("EN", "internal service answer"),
}
FETCH = """
name: fetch
nodes:
  call: {type: http, url: "{{ input.text }}", store: r, timeout: 2, next: ok, error: bad}
  ok: {type: say, text: "got {{ context.r }}"}
  bad: {type: say, text: "refused"}
"""


@pytest.fixture
async def strict(tmp_path: Path, db_url: str) -> AsyncIterator[RunningServer]:
    """A server whose outbound features allow nothing internal (webhooks: loopback, for
    the test's receiver)."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "fetch.yaml").write_text(FETCH)
    async with running_server(
        tmp_path,
        db_url,
        flows_dir=flows,
        http_node_allow_cidrs=[],
        llm_allow_cidrs=[],
        translation_allow_cidrs=[],
        nlu_allow_cidrs=[],
    ) as srv:
        yield srv


@pytest.fixture
async def internal() -> AsyncIterator[FakeApi]:
    async with fake_api(dictionary_deepl(TABLE)) as api:
        yield api


async def test_translation_base_url_cannot_reach_a_loopback_service(
    strict: RunningServer,
    receiver: Receiver,
    internal: FakeApi,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A translation ``baseUrl`` on loopback is refused at connect time: the service
    sees no request and its answer never reaches the caller (the text passes through)."""
    monkeypatch.setenv(KEY_ENV, "k")
    ep = await strict.create_endpoint(
        name="tr",
        flow="echo",
        webhookUrl=receiver.url,
        translation={
            "provider": "deepl",
            "flowLocale": "en",
            "apiKeyEnv": KEY_ENV,
            "baseUrl": internal.url,
        },
    )
    await strict.post_message(ep, {"userId": "u", "sessionId": "s", "text": "Hallo Welt"})
    (delivery,) = await receiver.wait_for(1)
    assert delivery.body["AIOutput"]["text"] == "You said: Hallo Welt"
    assert internal.seen == []


async def test_nlu_connector_cannot_reach_metadata_or_loopback(
    strict: RunningServer, receiver: Receiver, internal: FakeApi
) -> None:
    """NLU connector URLs on link-local (cloud metadata) or loopback are never called:
    the turn falls back to built-in matching and the service sees nothing."""
    internal.handler = reply({"intent": {"name": "greet", "confidence": 1.0}})
    for n, url in enumerate([internal.url + "/model/parse", "http://169.254.169.254/parse"]):
        ep = await strict.create_endpoint(
            name=f"nlu{n}",
            flow="echo",
            webhookUrl=receiver.url,
            nluConnector={"type": "rasa", "url": url, "timeout": 1},
        )
        await strict.post_message(ep, {"userId": "u", "sessionId": "s", "text": "hello"})
    await receiver.wait_for(2)
    assert internal.seen == []


async def test_http_node_cannot_reach_a_loopback_service(
    strict: RunningServer, receiver: Receiver, internal: FakeApi
) -> None:
    """An http node whose URL a chat user steers to a loopback service gets refused."""
    ep = await strict.create_endpoint(name="f", flow="fetch", webhookUrl=receiver.url)
    await strict.post_message(ep, {"userId": "u", "sessionId": "s", "text": internal.url})
    (delivery,) = await receiver.wait_for(1)
    assert delivery.body["AIOutput"]["text"] == "refused"
    assert internal.seen == []
