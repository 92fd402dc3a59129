"""Real-time translation and NLU connectors through the real server: a German user
talks to an English flow via a fake DeepL; a fake Rasa server's intents drive the FAQ
example flow; the settings through the admin API and the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.support.receiver import Receiver
from tests.support.server import RunningServer, running_server
from tests.unit.translation.fakes import FakeApi, Handler, Seen, dictionary_deepl, fake_api, reply

REPO = Path(__file__).resolve().parents[2]
KEY_ENV = "FLOWHOOK_TEST_DEEPL_KEY"
KEY = "deepl-test-key-0d9f"
TABLE = {
    "Hallo Welt": ("DE", "Hello world"),
    "You said: Hello world": ("EN", "Du sagtest: Hallo Welt"),
}


@pytest.fixture
async def deepl() -> AsyncIterator[FakeApi]:
    async with fake_api(dictionary_deepl(TABLE)) as api:
        yield api


async def test_german_user_talks_to_an_english_flow(
    server: RunningServer, receiver: Receiver, deepl: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With translation on (fake DeepL), a German message reaches the English echo flow
    in English and its output reaches the webhook in German; when the provider fails,
    the text passes through untranslated. The key is read from the environment and never
    appears in the endpoint's settings."""
    monkeypatch.setenv(KEY_ENV, KEY)
    translation = {
        "provider": "deepl",
        "flowLocale": "en",
        "apiKeyEnv": KEY_ENV,
        "baseUrl": deepl.url,
    }
    ep = await server.create_endpoint(
        name="tr", flow="echo", webhookUrl=receiver.url, translation=translation
    )
    assert ep["translation"] == {
        **translation,
        "model": None,
        "userLanguageDataKey": None,
        "timeout": 5.0,
        "enabled": True,
        "userLanguage": None,
        "setLanguageOnExecution": None,
        "noTranslationMarker": "**",
        "alwaysRemoveMarkers": False,
        "deeplGlossaryInput": None,
        "deeplGlossaryOutput": None,
        "deeplFormality": None,
        "translateData": False,
    }
    assert ep["nluConnector"] is None
    assert KEY not in json.dumps(ep)
    msg = {"userId": "u1", "sessionId": "s1", "text": "Hallo Welt"}
    assert (await server.post_message(ep, msg))[0] == 202
    (delivery,) = await receiver.wait_for(1)
    assert delivery.body["AIOutput"]["text"] == "Du sagtest: Hallo Welt"
    inbound, outbound = deepl.seen
    assert inbound.headers["Authorization"] == f"DeepL-Auth-Key {KEY}"
    assert inbound.body == {"text": ["Hallo Welt"], "target_lang": "EN-US"}
    assert outbound.body == {
        "text": ["You said: Hello world"],
        "target_lang": "DE",
        "source_lang": "EN",
    }

    deepl.handler = reply({"message": "Quota exceeded"}, status=456)
    assert (await server.post_message(ep, {**msg, "text": "Guten Morgen"}))[0] == 202
    await receiver.wait_for(2)
    assert receiver.bodies()[1]["AIOutput"]["text"] == "You said: Guten Morgen"


async def test_translation_off_and_validation(server: RunningServer, receiver: Receiver) -> None:
    """Translation is off by default; bad settings are refused naming the field; PATCH
    null switches a setting off again."""
    status, body = await server.api(
        "POST",
        "/api/v1/endpoints",
        {
            "name": "v",
            "flow": "echo",
            "webhookUrl": receiver.url,
            "translation": {"provider": "deepl", "flowLocale": "en"},
        },
    )
    assert (status, body["error"]["field"]) == (400, "translation")
    assert "apiKeyEnv is required" in json.dumps(body)
    status, body = await server.api(
        "POST",
        "/api/v1/endpoints",
        {
            "name": "v",
            "flow": "echo",
            "webhookUrl": receiver.url,
            "nluConnector": {"type": "rasa", "url": "nope"},
        },
    )
    assert (status, body["error"]["field"]) == (400, "nluConnector.rasa.url")
    ep = await server.create_endpoint(
        name="v",
        flow="echo",
        webhookUrl=receiver.url,
        nluConnector={"type": "rasa", "url": "http://127.0.0.1:5005"},
    )
    assert ep["translation"] is None
    assert ep["nluConnector"]["url"] == "http://127.0.0.1:5005"
    status, body = await server.api(
        "PATCH", f"/api/v1/endpoints/{ep['id']}", {"nluConnector": None}
    )
    assert (status, body["nluConnector"]) == (200, None)


def rasa_handler(table: dict[str, dict[str, Any]]) -> Handler:
    async def answer(seen: Seen) -> web.StreamResponse:
        return web.json_response(table[seen.body["text"]])

    return answer


@pytest.fixture
async def faq_server(tmp_path: Path, db_url: str) -> AsyncIterator[RunningServer]:
    flows = tmp_path / "flows"
    flows.mkdir()
    shutil.copy(REPO / "examples" / "faq.yaml", flows / "faq.yaml")
    async with running_server(tmp_path, db_url, flows_dir=flows) as s:
        yield s


async def test_rasa_intents_drive_the_faq_flow(
    faq_server: RunningServer, receiver: Receiver
) -> None:
    """With a Rasa connector, the fake Rasa server's intent and entities decide the FAQ
    flow's answer (where the built-in matcher would not know the words); an intent below
    minScore is none (fallback answer); when Rasa fails, the built-in matcher answers."""
    table: dict[str, dict[str, Any]] = {
        "xyzzy weekend plugh": {
            "intent": {"name": "opening_hours", "confidence": 0.93},
            "entities": [{"entity": "weekday", "value": "saturday", "start": 0, "end": 5}],
        },
        "frobnicate": {"intent": {"name": "returns", "confidence": 0.2}, "entities": []},
    }
    async with fake_api(rasa_handler(table)) as rasa:
        ep = await faq_server.create_endpoint(
            name="faq",
            flow="faq",
            webhookUrl=receiver.url,
            nluConnector={"type": "rasa", "url": rasa.url, "minScore": 0.5},
        )
        msg = {"userId": "u1", "sessionId": "s1"}
        assert (await faq_server.post_message(ep, {**msg, "text": "xyzzy weekend plugh"}))[0] == 202
        await receiver.wait_for(1)
        assert (await faq_server.post_message(ep, {**msg, "text": "frobnicate"}))[0] == 202
        await receiver.wait_for(2)
        assert [s.path for s in rasa.seen] == ["/model/parse", "/model/parse"]
        rasa.handler = reply({"error": "model not loaded"}, status=500)
        assert (await faq_server.post_message(ep, {**msg, "text": "when are you open"}))[0] == 202
        await receiver.wait_for(3)
    texts = [b["AIOutput"]["text"] for b in receiver.bodies()]
    assert texts == [
        "Sorry, we are closed on Saturday. We are open Monday to Friday, 9:00 to 18:00.",
        "Sorry, I don't know that one yet. I can help with opening hours, returns and shipping.",
        "We are open Monday to Friday, 9:00 to 18:00.",
    ]


def test_cli_flags_set_and_clear_the_settings(tmp_path: Path) -> None:
    """`endpoints create --translation/--nlu-connector JSON` stores both settings,
    `update --translation null` clears one, and bad JSON exits 2 naming the flag."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWHOOK_")}
    env.update(
        FLOWHOOK_DATA_DIR=str(tmp_path / "data"),
        FLOWHOOK_FLOWS_DIR=str(REPO / "flows"),
        FLOWHOOK_WEBHOOK_ALLOW_CIDRS="127.0.0.0/8",
    )

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "flowhook", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    translation = '{"provider": "google", "flowLocale": "en", "apiKeyEnv": "GOOGLE_KEY"}'
    created = cli(
        "endpoints",
        "create",
        "--name",
        "c",
        "--flow",
        "echo",
        "--webhook",
        "http://127.0.0.1:9/hook",
        "--translation",
        translation,
        "--nlu-connector",
        '{"type": "json", "url": "http://127.0.0.1:9/nlu", "intentPath": "a.b"}',
    )
    assert created.returncode == 0, created.stderr
    ep = json.loads(created.stdout)
    assert ep["translation"]["provider"] == "google"
    assert (ep["nluConnector"]["type"], ep["nluConnector"]["intentPath"]) == ("json", "a.b")
    updated = cli("endpoints", "update", ep["id"], "--translation", "null")
    assert updated.returncode == 0, updated.stderr
    after = json.loads(updated.stdout)
    assert after["translation"] is None
    assert after["nluConnector"]["intentPath"] == "a.b"
    bad = cli("endpoints", "update", ep["id"], "--translation", "{nope")
    assert bad.returncode == 2
    assert "--translation" in bad.stderr
    invalid = cli("endpoints", "update", ep["id"], "--translation", '{"provider": "deepl"}')
    assert invalid.returncode == 2
    assert "translation" in invalid.stderr
