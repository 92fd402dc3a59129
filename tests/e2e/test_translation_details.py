"""Real-time translation in detail, through the real server, a real receiver and a fake
DeepL whose received request bodies are checked: fixed user language, glossaries and
formality, no-translation markers, the language kept from execution N on, translation
switched off with markers removed, data translation, and messages forwarded to and
from a human agent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.receiver import Receiver
from tests.support.server import RunningServer, running_server
from tests.unit.translation.fakes import FakeApi, dictionary_deepl, fake_api

KEY_ENV = "FLOWHOOK_TEST_DEEPL_KEY"
TABLE = {
    "Bestellung": ("DE", "Order"),
    "bitte": ("DE", "please"),
    "You said: Order ABC-123 please. Code": ("EN", "Du sagtest: Bestellung ABC-123 bitte. Code"),
    "stays.": ("EN", "bleibt."),
    "Hallo Welt": ("DE", "Hello world"),
    "Salut": ("FR", "Hi"),
    "You said: Hello world. Code": ("EN", "Tu as dit : Bonjour le monde. Code"),
    "You said: Hi. Code": ("EN", "Tu as dit : Salut. Code"),
    "Wo ist mein Paket": ("DE", "Where is my parcel"),
    "Hi, I am Ann.": ("EN", "Hallo, ich bin Ann."),
}
FLOWS = {
    "codes": """
name: codes
nodes:
  answer:
    type: say
    text: "You said: {{ input.text }}. Code **X-1** stays."
""",
    "support": """
name: support
nodes:
  route:
    type: if
    condition: input.text == 'human please'
    then: escalate
    else: answer
  answer:
    type: say
    text: "bot: {{ input.text }}"
  escalate:
    type: handover
""",
}
USER = {"userId": "u1", "sessionId": "s1"}


@pytest.fixture
async def deepl(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeApi]:
    monkeypatch.setenv(KEY_ENV, "deepl-test-key")
    async with fake_api(dictionary_deepl(TABLE)) as api:
        yield api


@pytest.fixture
async def srv(tmp_path: Path, db_url: str) -> AsyncIterator[RunningServer]:
    flows = tmp_path / "flows"
    flows.mkdir()
    for name, text in FLOWS.items():
        (flows / f"{name}.yaml").write_text(text)
    async with running_server(tmp_path, db_url, flows_dir=flows) as s:
        yield s


def translation(api: FakeApi, **extra: Any) -> dict[str, Any]:
    return {
        "provider": "deepl",
        "flowLocale": "en",
        "apiKeyEnv": KEY_ENV,
        "baseUrl": api.url,
        **extra,
    }


async def test_fixed_language_glossaries_formality_and_markers(
    srv: RunningServer, receiver: Receiver, deepl: FakeApi
) -> None:
    """With a fixed user language the provider is told the source (no detection) and
    the input glossary; marked text is sent to nobody and arrives as written, without
    its markers, both ways; outputs use the output glossary and the formality."""
    ep = await srv.create_endpoint(
        name="t",
        flow="codes",
        webhookUrl=receiver.url,
        translation=translation(
            deepl,
            userLanguage="de",
            deeplGlossaryInput="gloss-in",
            deeplGlossaryOutput="gloss-out",
            deeplFormality="prefer_less",
        ),
    )
    assert (await srv.post_message(ep, {**USER, "text": "Bestellung **ABC-123** bitte"}))[0] == 202
    (delivery,) = await receiver.wait_for(1)
    assert (
        delivery.body["AIOutput"]["text"]
        == "Du sagtest: Bestellung ABC-123 bitte. Code X-1 bleibt."
    )
    inbound, outbound = (s.body for s in deepl.seen)
    assert inbound == {
        "text": ["Bestellung", "bitte"],
        "target_lang": "EN-US",
        "source_lang": "DE",
        "glossary_id": "gloss-in",
    }
    assert outbound == {
        "text": ["You said: Order ABC-123 please. Code", "stays."],
        "target_lang": "DE",
        "source_lang": "EN",
        "glossary_id": "gloss-out",
        "formality": "prefer_less",
    }


async def test_language_is_kept_from_execution_n_on(
    srv: RunningServer, receiver: Receiver, deepl: FakeApi
) -> None:
    """With setLanguageOnExecution 2 the language is detected on the first two messages
    (German, then French) and from then on French is sent as the source, without
    detection, even for a German text."""
    ep = await srv.create_endpoint(
        name="n",
        flow="codes",
        webhookUrl=receiver.url,
        translation=translation(deepl, setLanguageOnExecution=2),
    )
    for count, text in enumerate(("Hallo Welt", "Salut", "Hallo Welt"), 1):
        assert (await srv.post_message(ep, {**USER, "text": text}))[0] == 202
        await receiver.wait_for(count)
    inbound = [s.body for s in deepl.seen if s.body["target_lang"] == "EN-US"]
    assert inbound == [
        {"text": ["Hallo Welt"], "target_lang": "EN-US"},
        {"text": ["Salut"], "target_lang": "EN-US"},
        {"text": ["Hallo Welt"], "target_lang": "EN-US", "source_lang": "FR"},
    ]
    targets = [s.body["target_lang"] for s in deepl.seen if s.body["target_lang"] != "EN-US"]
    assert targets == ["DE", "FR", "FR"]


async def test_switched_off_translation_removes_markers_only_when_asked(
    srv: RunningServer, receiver: Receiver, deepl: FakeApi
) -> None:
    """enabled: false translates nothing (no provider call); with alwaysRemoveMarkers the
    markers are still removed from the input and the outputs, without it they stay."""
    plain = await srv.create_endpoint(
        name="p",
        flow="codes",
        webhookUrl=receiver.url,
        translation=translation(deepl, enabled=False, alwaysRemoveMarkers=True),
    )
    kept = await srv.create_endpoint(
        name="k",
        flow="codes",
        webhookUrl=receiver.url,
        translation=translation(deepl, enabled=False, noTranslationMarker="%%"),
    )
    await srv.post_message(plain, {**USER, "text": "keep **this** as is"})
    await receiver.wait_for(1)
    await srv.post_message(kept, {**USER, "text": "keep %%this%% as is"})
    await receiver.wait_for(2)
    assert [b["AIOutput"]["text"] for b in receiver.bodies()] == [
        "You said: keep this as is. Code X-1 stays.",
        "You said: keep %%this%% as is. Code **X-1** stays.",
    ]
    assert deepl.seen == []


async def test_data_is_translated_only_when_asked(
    srv: RunningServer, receiver: Receiver, deepl: FakeApi
) -> None:
    """By default data never goes to the provider; with translateData its strings do
    (not URLs, not numbers), in the same call as the text."""
    data = {"note": "Hallo Welt", "link": "https://example.com/Hallo", "n": 1}
    off = await srv.create_endpoint(
        name="off", flow="echo", webhookUrl=receiver.url, translation=translation(deepl)
    )
    on = await srv.create_endpoint(
        name="on",
        flow="echo",
        webhookUrl=receiver.url,
        translation=translation(deepl, translateData=True),
    )
    await srv.post_message(off, {**USER, "text": "Hallo Welt", "data": data})
    await receiver.wait_for(1)
    assert [s.body["text"] for s in deepl.seen] == [["Hallo Welt"], ["You said: Hello world"]]
    deepl.seen.clear()
    await srv.post_message(on, {**USER, "text": "Hallo Welt", "data": data})
    (_, delivery) = await receiver.wait_for(2)
    assert deepl.seen[0].body["text"] == ["Hallo Welt", "Hallo Welt"]
    assert deepl.seen[1].body["text"] == ["You said: Hello world", "Hello world"]
    assert delivery.body["AIOutput"]["data"]["link"] == "https://example.com/Hallo"


async def test_forwarded_handover_messages_are_translated_both_ways(
    srv: RunningServer, receiver: Receiver, deepl: FakeApi
) -> None:
    """While handed over, the user's German message reaches the agent's provider in the
    flow's English (with the original beside it), and the agent's English reply reaches
    the user in German."""
    provider = Receiver()
    await provider.start()
    try:
        ep = await srv.create_endpoint(
            name="h",
            flow="support",
            webhookUrl=receiver.url,
            handoverUrl=provider.url,
            translation=translation(deepl, userLanguageDataKey="lang"),
        )
        await srv.post_message(ep, {**USER, "text": "human please", "data": {"lang": "de"}})
        await srv.post_message(ep, {**USER, "text": "Wo ist mein Paket"})
        forwarded = (await provider.wait_for(2))[1].body
        assert (forwarded["event"], forwarded["text"], forwarded["originalText"]) == (
            "message",
            "Where is my parcel",
            "Wo ist mein Paket",
        )
        status, _ = await srv.api(
            "POST",
            f"/api/v1/endpoints/{ep['id']}/sessions/s1/handover/messages",
            {"userId": "u1", "text": "Hi, I am Ann."},
        )
        assert status == 202
        reply = (await receiver.wait_for(1))[-1]
        assert reply.body["AIOutput"]["text"] == "Hallo, ich bin Ann."
        # No language in this message's data: detected, as for a message to the flow.
        assert {"text": ["Wo ist mein Paket"], "target_lang": "EN-US"} in [
            s.body for s in deepl.seen
        ]
    finally:
        await provider.stop()
