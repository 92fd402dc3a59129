"""TurnPipeline: inbound and outbound translation around a turn, the user's language
remembered in the session, and pass-through (with a log line) when the provider fails."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from flowhook.endpoints.settings import EndpointSettings
from flowhook.flows.types import Output, SessionState, TurnInput, TurnResult
from flowhook.sessions import translate_turn as translate_module
from flowhook.sessions.pipeline import USER_LANGUAGE_KEY, TurnPipeline
from tests.support.outbound import loopback

from .fakes import FakeApi, dictionary_deepl, fake_api, reply

KEY = "deepl-secret-value"
TABLE = {
    "Hallo Welt": ("DE", "Hello world"),
    "You said: Hello world": ("EN", "Du sagtest: Hallo Welt"),
    "Bye": ("EN", "Tschüss"),
}


def settings_for(api: FakeApi, **extra: Any) -> EndpointSettings:
    translation = {"provider": "deepl", "flowLocale": "en", "apiKeyEnv": "DEEPL_KEY"}
    return EndpointSettings.model_validate(
        {"translation": {**translation, "baseUrl": api.url, **extra}}
    )


def turn(text: str | None, data: dict[str, Any] | None = None) -> TurnInput:
    return TurnInput("u1", "s1", "trace-1", text=text, data=data or {})


@pytest.fixture
async def pipeline() -> AsyncIterator[TurnPipeline]:
    p = TurnPipeline(environ={"DEEPL_KEY": KEY}, translation_policy=loopback("translation"))
    yield p
    await p.aclose()


async def test_round_trip_with_detected_language(pipeline: TurnPipeline) -> None:
    """A German message is translated into the flow's English (language detected and
    remembered); the outputs' texts go back into German, data untouched."""
    async with fake_api(dictionary_deepl(TABLE)) as api:
        settings = settings_for(api)
        extra: dict[str, Any] = {}
        translated = await pipeline.before(settings, extra, turn("Hallo Welt"))
        assert translated.text == "Hello world"
        assert extra[USER_LANGUAGE_KEY] == "de"
        outputs = [Output("You said: Hello world", {"x": 1}), Output(None, {"only": "data"})]
        back = await pipeline.after(settings, extra, outputs)
        assert back == [Output("Du sagtest: Hallo Welt", {"x": 1}), Output(None, {"only": "data"})]
        assert api.seen[0].body == {"text": ["Hallo Welt"], "target_lang": "EN-US"}
        assert api.seen[1].body == {
            "text": ["You said: Hello world"],
            "target_lang": "DE",
            "source_lang": "EN",
        }


async def test_language_from_data_and_same_language_skips(pipeline: TurnPipeline) -> None:
    """With userLanguageDataKey, data gives the source language; a user writing the flow's
    own language is not sent to the provider at all, nor are their outputs."""
    async with fake_api(dictionary_deepl(TABLE)) as api:
        settings = settings_for(api, userLanguageDataKey="language")
        extra: dict[str, Any] = {}
        same = await pipeline.before(settings, extra, turn("Bye", {"language": "en-GB"}))
        assert same.text == "Bye"
        assert await pipeline.after(settings, extra, [Output("Bye")]) == [Output("Bye")]
        assert api.seen == []
        german = await pipeline.before(settings, extra, turn("Hallo Welt", {"language": "de"}))
        assert german.text == "Hello world"
        assert api.seen[0].body["source_lang"] == "DE"
        assert extra[USER_LANGUAGE_KEY] == "de"


async def test_english_detected_is_left_untouched(pipeline: TurnPipeline) -> None:
    """When the provider detects the flow's own language, the user's words reach the flow
    as written and outputs are not translated."""
    async with fake_api(
        reply({"translations": [{"text": "HELLO", "detected_source_language": "EN"}]})
    ) as api:
        settings = settings_for(api)
        extra: dict[str, Any] = {}
        assert (await pipeline.before(settings, extra, turn("hello"))).text == "hello"
        assert await pipeline.after(settings, extra, [Output("Hi")]) == [Output("Hi")]
        assert len(api.seen) == 1


async def test_provider_failure_passes_text_through(pipeline: TurnPipeline) -> None:
    """A failing provider leaves input and outputs untranslated; each failure is one log
    line naming the direction and reason, without the text or the API key."""
    async with fake_api(reply({"message": "Quota exceeded"}, status=456)) as api:
        settings = settings_for(api)
        extra: dict[str, Any] = {USER_LANGUAGE_KEY: "de"}
        with capture_logs() as logs:
            assert (await pipeline.before(settings, extra, turn("Hallo Welt"))).text == "Hallo Welt"
            assert await pipeline.after(settings, extra, [Output("Secret")]) == [Output("Secret")]
    failures = [entry for entry in logs if entry["event"] == "translation.failed"]
    assert [(f["direction"], f["reason"]) for f in failures] == [
        ("in", "answered HTTP 456"),
        ("out", "answered HTTP 456"),
    ]
    assert not any(word in repr(logs) for word in ("Hallo", "Secret", KEY))


async def test_missing_key_variable_passes_through() -> None:
    """An unset API key variable is a logged failure (naming the variable), not a crash."""
    pipeline = TurnPipeline(environ={}, translation_policy=loopback("translation"))
    async with fake_api(dictionary_deepl(TABLE)) as api:
        with capture_logs() as logs:
            out = await pipeline.before(settings_for(api), {}, turn("Hallo Welt"))
    await pipeline.aclose()
    assert out.text == "Hallo Welt"
    assert logs[0]["reason"] == "environment variable DEEPL_KEY is not set"
    assert api.seen == []


async def test_off_by_default_and_language_survives_a_fresh_state(
    pipeline: TurnPipeline,
) -> None:
    """Without the settings nothing changes and no call is made; ``carry`` keeps the
    user's language when the turn started the session afresh."""
    plain = EndpointSettings()
    original = turn("Hallo Welt")
    assert await pipeline.before(plain, {}, original) is original
    outputs = [Output("x")]
    assert await pipeline.after(plain, {USER_LANGUAGE_KEY: "de"}, outputs) is outputs
    fresh = TurnResult([], SessionState())
    assert pipeline.carry({USER_LANGUAGE_KEY: "de"}, fresh).state.extra == {USER_LANGUAGE_KEY: "de"}
    kept = TurnResult([], SessionState(extra={USER_LANGUAGE_KEY: "fr"}))
    assert pipeline.carry({USER_LANGUAGE_KEY: "de"}, kept).state.extra[USER_LANGUAGE_KEY] == "fr"


async def test_unexpected_errors_never_fail_the_turn(
    pipeline: TurnPipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected exception inside a provider is logged by type only (its message
    might quote the text) and the turn goes on untranslated."""

    class Broken:
        name = "broken"

        async def translate(self, *_args: object) -> list[object]:
            raise RuntimeError("leaky Hallo Welt")

    monkeypatch.setattr(translate_module, "translator_for", lambda *_a: Broken())
    async with fake_api(dictionary_deepl(TABLE)) as api:
        settings = settings_for(api)
        extra: dict[str, Any] = {USER_LANGUAGE_KEY: "de"}
        with capture_logs() as logs:
            assert (await pipeline.before(settings, extra, turn("Hallo Welt"))).text == "Hallo Welt"
            assert await pipeline.after(settings, extra, [Output("Hi")]) == [Output("Hi")]
    assert [entry["reason"] for entry in logs] == ["unexpected RuntimeError"] * 2
    assert "leaky" not in repr(logs)
