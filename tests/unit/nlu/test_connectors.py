"""External NLU connectors (Rasa, generic JSON) against real fake servers on loopback;
the engine taking their result instead of the built-in matcher; fallback on failure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import ValidationError
from structlog.testing import capture_logs

from flowhook.endpoints.settings import EndpointSettings
from flowhook.flows import SessionState
from flowhook.nlu import NluResult
from flowhook.nlu.connectors import (
    ExternalServiceError,
    JsonConnector,
    JsonConnectorSettings,
    NluQuery,
    RasaConnector,
    RasaConnectorSettings,
)
from flowhook.nlu.connectors.generic import fill
from flowhook.sessions.pipeline import TurnPipeline
from tests.support.outbound import loopback

from ..flows.helpers import engine_for, make_input
from ..translation.fakes import fake_api, hang, raw, reply

RASA_REPLY = {
    "text": "is the shop open on saturday",
    "intent": {"name": "opening_hours", "confidence": 0.91234},
    "entities": [
        {"entity": "weekday", "value": "saturday", "start": 21, "end": 29},
        {"entity": "weekday", "value": "sunday"},
        {"entity": "count", "value": 3},
        {"entity": "when", "value": {"from": "x"}},
    ],
    "intent_ranking": [],
}
QUERY = NluQuery("is the shop open on saturday", "u1", "s1", "en")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def rasa(url: str, **fields: Any) -> RasaConnectorSettings:
    return RasaConnectorSettings.model_validate({"type": "rasa", "url": url, **fields})


async def test_rasa_parse_maps_intent_and_entities(http: aiohttp.ClientSession) -> None:
    """Rasa gets POST /model/parse {"text"}; intent.name/confidence become intent/score and
    entities become slots (first value of a name wins, numbers spelled out, objects
    dropped)."""
    async with fake_api(reply(RASA_REPLY)) as api:
        result = await RasaConnector(rasa(api.url), {}).parse(http, QUERY)
        assert result == NluResult("opening_hours", 0.9123, {"weekday": "saturday", "count": "3"})
        (seen,) = api.seen
        assert (seen.method, seen.path, seen.body) == (
            "POST",
            "/model/parse",
            {"text": "is the shop open on saturday"},
        )
        assert seen.query == {}


async def test_rasa_token_min_score_and_no_intent(http: aiohttp.ClientSession) -> None:
    """A token from the named environment variable goes as ?token=; a full /model/parse
    URL is used as given; an intent below minScore, or none at all, is null."""
    async with fake_api(reply(RASA_REPLY)) as api:
        cfg = rasa(api.url + "/model/parse/", apiKeyEnv="RASA_TOKEN", minScore=0.95)
        result = await RasaConnector(cfg, {"RASA_TOKEN": "t0k"}).parse(http, QUERY)
        assert (result.intent, result.score) == (None, 0.9123)
        assert (api.seen[0].path, api.seen[0].query) == ("/model/parse", {"token": "t0k"})
        with pytest.raises(ExternalServiceError, match="RASA_TOKEN is not set"):
            await RasaConnector(cfg, {}).parse(http, QUERY)
    async with fake_api(
        reply({"intent": {"name": None, "confidence": 0.0}, "entities": []})
    ) as api:
        assert await RasaConnector(rasa(api.url), {}).parse(http, QUERY) == NluResult(None, 0.0)


@pytest.mark.parametrize(
    ("handler", "message"),
    [
        (reply({"error": "boom"}, status=500), "answered HTTP 500"),
        (raw("<html>"), "reply is not JSON"),
        (reply(["not", "an", "object"]), "reply is not a JSON object"),
    ],
)
async def test_rasa_failures(http: aiohttp.ClientSession, handler: Any, message: str) -> None:
    """A non-2xx status, a reply that is not JSON, or not an object fail the call."""
    async with fake_api(handler) as api:
        with pytest.raises(ExternalServiceError) as caught:
            await RasaConnector(rasa(api.url), {}).parse(http, QUERY)
    assert str(caught.value) == message


async def test_rasa_timeout(http: aiohttp.ClientSession) -> None:
    """A Rasa server that does not answer fails the call after the configured timeout."""
    release = asyncio.Event()
    async with fake_api(hang(release)) as api:
        started = asyncio.get_running_loop().time()
        with pytest.raises(ExternalServiceError, match=r"no answer within 0\.2s"):
            await RasaConnector(rasa(api.url, timeout=0.2), {}).parse(http, QUERY)
        assert asyncio.get_running_loop().time() - started < 2
        release.set()


async def test_json_connector_body_template_and_paths(http: aiohttp.ClientSession) -> None:
    """The generic connector fills ${...} placeholders in its body, sends a bearer token
    from the environment, and reads intent, score and slots at dotted paths (list
    indexes included)."""
    answer = {
        "result": {
            "intents": [{"label": "refund", "p": 0.8}],
            "fields": {"orderNumber": "12345", "express": True},
        }
    }
    async with fake_api(reply(answer)) as api:
        cfg = JsonConnectorSettings.model_validate(
            {
                "type": "json",
                "url": api.url + "/nlu",
                "body": {"query": "${text}", "meta": {"user": "${userId}", "lang": "${locale}"}},
                "intentPath": "result.intents.0.label",
                "scorePath": "result.intents.0.p",
                "slotsPath": "result.fields",
                "apiKeyEnv": "NLU_TOKEN",
            }
        )
        result = await JsonConnector(cfg, {"NLU_TOKEN": "abc"}).parse(http, QUERY)
        assert result == NluResult("refund", 0.8, {"orderNumber": "12345", "express": "true"})
        (seen,) = api.seen
        assert seen.path == "/nlu"
        assert seen.headers["Authorization"] == "Bearer abc"
        assert seen.body == {
            "query": "is the shop open on saturday",
            "meta": {"user": "u1", "lang": "en"},
        }


async def test_json_connector_defaults_and_missing_paths(http: aiohttp.ClientSession) -> None:
    """By default the body is {"text"} and intent/score/slots are read at the top level; an
    intent without a score counts as certain; absent paths mean no intent."""
    async with fake_api(
        reply({"intent": "greet", "slots": [{"name": "who", "value": "Ann"}]})
    ) as api:
        cfg = JsonConnectorSettings(type="json", url=api.url)
        assert await JsonConnector(cfg, {}).parse(http, QUERY) == NluResult(
            "greet", 1.0, {"who": "Ann"}
        )
        assert api.seen[0].body == {"text": "is the shop open on saturday"}
    async with fake_api(reply({"something": "else"})) as api:
        cfg = JsonConnectorSettings(type="json", url=api.url)
        assert await JsonConnector(cfg, {}).parse(http, QUERY) == NluResult(None, 0.0)


def test_fill_substitutes_only_known_placeholders() -> None:
    """Placeholders are replaced inside strings at any depth; unknown ones stay."""
    assert fill({"a": ["${text}!", 1, None], "b": "$other"}, {"text": "hi"}) == {
        "a": ["hi!", 1, None],
        "b": "$other",
    }


def test_connector_settings_are_validated() -> None:
    """A connector needs a known type and an absolute http(s) URL without credentials;
    unknown fields are refused."""
    for bad in (
        {"type": "wit", "url": "http://x"},
        {"type": "rasa", "url": "localhost:5005"},
        {"type": "rasa", "url": "http://user:pw@x"},
        {"type": "json", "url": "http://x", "token": "inline"},
        {"type": "rasa", "url": "http://x", "timeout": 0},
    ):
        with pytest.raises(ValidationError):
            EndpointSettings.model_validate({"nluConnector": bad})


FLOW = """
name: test
intents:
  greet:
    examples: [hello, hi there]
nodes:
  start:
    type: say
    text: "{{ input.intent }} {{ input.intentScore }} {{ input.slots }}"
"""


async def test_engine_uses_external_result_instead_of_built_in(tmp_path: Path) -> None:
    """TurnInput.nlu, when set, is what the flow sees as input.intent / intentScore /
    slots; without it the built-in matcher runs as before."""
    engine = engine_for(tmp_path, FLOW)
    built_in = await engine.run_turn("test", SessionState(), make_input("hello"))
    assert built_in.outputs[0].text == "greet 1.0 {}"
    external = NluResult("order", 0.5, {"orderNumber": "1"})
    turn = make_input("hello")
    result = await engine.run_turn("test", SessionState(), replace(turn, nlu=external))
    assert result.outputs[0].text == "order 0.5 {'orderNumber': '1'}"


async def test_pipeline_falls_back_to_built_in_on_failure() -> None:
    """The pipeline puts the connector's result on the turn; when the connector fails it
    logs one line (no text) and leaves the turn for the built-in matcher."""
    pipeline = TurnPipeline(environ={}, nlu_policy=loopback("nlu connector"))
    try:
        async with fake_api(reply(RASA_REPLY)) as api:
            settings = EndpointSettings.model_validate(
                {"nluConnector": {"type": "rasa", "url": api.url}}
            )
            turn = await pipeline.before(settings, {}, make_input("is the shop open on saturday"))
            assert turn.nlu is not None
            assert turn.nlu.intent == "opening_hours"
        with capture_logs() as logs:
            turn = await pipeline.before(settings, {}, make_input("is the shop open on saturday"))
        assert turn.nlu is None
        (line,) = logs
        assert (line["event"], line["connector"], line["fallback"]) == (
            "nlu_connector.failed",
            "rasa",
            "built-in",
        )
        assert line["reason"].startswith("connection failed")
        assert "saturday" not in repr(logs)
        assert (await pipeline.before(settings, {}, make_input(None, {"a": 1}))).nlu is None
    finally:
        await pipeline.aclose()
