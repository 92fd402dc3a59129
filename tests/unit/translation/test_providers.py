"""The translation providers against real fake APIs on loopback: request shape, reply
mapping, and clean failures that never reveal an API key."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from pydantic import ValidationError

from flowhook.translation import (
    DeepLTranslator,
    ExternalServiceError,
    GoogleTranslator,
    OpenAiTranslator,
    Translation,
    TranslationSettings,
    translator_for,
)

from .fakes import fake_api, hang, raw, reply

KEY = "sk-secret-key-123"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_deepl_request_and_reply(http: aiohttp.ClientSession) -> None:
    """DeepL gets POST /v2/translate with its auth header, all texts in one JSON body,
    an upper-case target (EN made EN-US) and source; the detected language comes back in
    lower case, and only when no source was given."""
    answer = {
        "translations": [
            {"detected_source_language": "DE", "text": "Hello"},
            {"detected_source_language": "DE", "text": "Good night"},
        ]
    }
    async with fake_api(reply(answer)) as api:
        deepl = DeepLTranslator(KEY, base_url=api.url, timeout=5)
        found = await deepl.translate(http, ["Hallo", "Gute Nacht"], "en")
        assert found == [Translation("Hello", "de"), Translation("Good night", "de")]
        (seen,) = api.seen
        assert (seen.method, seen.path) == ("POST", "/v2/translate")
        assert seen.headers["Authorization"] == f"DeepL-Auth-Key {KEY}"
        assert seen.body == {"text": ["Hallo", "Gute Nacht"], "target_lang": "EN-US"}
        given = await deepl.translate(http, ["Hallo", "Gute Nacht"], "fr-FR", source="de-AT")
        assert [t.detected for t in given] == [None, None]
        assert api.seen[1].body["target_lang"] == "FR-FR"
        assert api.seen[1].body["source_lang"] == "DE"


def test_deepl_free_keys_use_the_free_host() -> None:
    """Without a baseUrl, a free-plan key (":fx") goes to api-free.deepl.com, others to
    api.deepl.com."""
    assert DeepLTranslator("abc:fx", timeout=1).base_url == "https://api-free.deepl.com"
    assert DeepLTranslator("abc", timeout=1).base_url == "https://api.deepl.com"


async def test_google_request_and_reply(http: aiohttp.ClientSession) -> None:
    """Google gets POST /language/translate/v2?key=... with q, target, format text and the
    source when known; translatedText and detectedSourceLanguage are mapped."""
    answer = {
        "data": {"translations": [{"translatedText": "Bonjour", "detectedSourceLanguage": "en"}]}
    }
    async with fake_api(reply(answer)) as api:
        google = GoogleTranslator(KEY, base_url=api.url + "/", timeout=5)
        assert await google.translate(http, ["Hello"], "FR") == [Translation("Bonjour", "en")]
        (seen,) = api.seen
        assert seen.path == "/language/translate/v2"
        assert seen.query == {"key": KEY}
        assert seen.body == {"q": ["Hello"], "target": "fr", "format": "text"}
        assert (await google.translate(http, ["Hello"], "fr", source="en_GB"))[0].detected is None
        assert api.seen[1].body["source"] == "en-gb"


async def test_google_error_does_not_reveal_the_key(http: aiohttp.ClientSession) -> None:
    """A 403 from Google (key in the query string) fails with a message naming the status
    and nothing of the URL or key."""
    async with fake_api(reply({"error": {"message": "bad key"}}, status=403)) as api:
        google = GoogleTranslator(KEY, base_url=api.url, timeout=5)
        with pytest.raises(ExternalServiceError) as caught:
            await google.translate(http, ["Hello"], "fr")
    assert str(caught.value) == "answered HTTP 403"
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None


async def test_openai_known_and_detected_source(http: aiohttp.ClientSession) -> None:
    """The chat model gets the model, temperature 0, a translation-only system prompt and
    the text; with no source it is asked for JSON and its "source" becomes the detected
    language; a reply that is not that JSON is taken as the translation."""
    contents = iter(
        [
            "Hola",
            '```json\n{"source": "EN", "text": "Hola"}\n```',
            "Hola (no JSON)",
        ]
    )

    async def answer(_seen: object) -> aiohttp.web.StreamResponse:
        return aiohttp.web.json_response({"choices": [{"message": {"content": next(contents)}}]})

    async with fake_api(answer) as api:
        model = OpenAiTranslator(KEY, model="tiny", base_url=api.url + "/v1", timeout=5)
        assert await model.translate(http, ["Hello"], "es", "en") == [Translation("Hola")]
        assert await model.translate(http, ["Hello"], "es") == [Translation("Hola", "en")]
        assert await model.translate(http, ["Hello"], "es") == [Translation("Hola (no JSON)")]
        first = api.seen[0]
        assert first.path == "/v1/chat/completions"
        assert first.headers["Authorization"] == f"Bearer {KEY}"
        assert (first.body["model"], first.body["temperature"]) == ("tiny", 0)
        system, user = first.body["messages"]
        assert "from en into es" in system["content"]
        assert "translation only" in system["content"]
        assert user == {"role": "user", "content": "Hello"}
        assert "JSON" in api.seen[1].body["messages"][0]["content"]


async def test_openai_without_key_sends_no_authorization(http: aiohttp.ClientSession) -> None:
    """A local OpenAI-compatible server needs no key: no Authorization header is sent; a
    reply without content is an error."""
    async with fake_api(reply({"choices": []})) as api:
        model = OpenAiTranslator(None, model="tiny", base_url=api.url, timeout=5)
        with pytest.raises(ExternalServiceError, match="no choices"):
            await model.translate(http, ["Hello"], "es", "en")
        assert "Authorization" not in api.seen[0].headers


@pytest.mark.parametrize(
    ("handler", "message"),
    [
        (raw("not json"), "reply is not JSON"),
        (reply({"message": "Quota exceeded"}, status=456), "answered HTTP 456"),
        (reply({"translations": []}), "reply has no translation for every text"),
        (reply({"translations": [{"text": 5}]}), "reply has a translation without text"),
    ],
)
async def test_deepl_bad_replies_fail_cleanly(
    http: aiohttp.ClientSession, handler: object, message: str
) -> None:
    """Bad JSON, a non-2xx status or a reply of the wrong shape raise ExternalServiceError
    with a message safe to log (no key)."""
    async with fake_api(handler) as api:  # type: ignore[arg-type]
        deepl = DeepLTranslator(KEY, base_url=api.url, timeout=5)
        with pytest.raises(ExternalServiceError) as caught:
            await deepl.translate(http, ["Hallo"], "en")
    assert str(caught.value) == message
    assert KEY not in str(caught.value)


async def test_timeout_fails_within_the_limit(http: aiohttp.ClientSession) -> None:
    """A provider that does not answer fails after the configured timeout, not later."""
    release = asyncio.Event()
    async with fake_api(hang(release)) as api:
        deepl = DeepLTranslator(KEY, base_url=api.url, timeout=0.2)
        started = asyncio.get_running_loop().time()
        with pytest.raises(ExternalServiceError, match=r"no answer within 0\.2s"):
            await deepl.translate(http, ["Hallo"], "en")
        assert asyncio.get_running_loop().time() - started < 2
        release.set()


async def test_unreachable_provider_fails_cleanly(http: aiohttp.ClientSession) -> None:
    """A closed port is a connection failure, reported without the URL."""
    async with fake_api(reply({})) as api:
        url = api.url
    google = GoogleTranslator(KEY, base_url=url, timeout=2)
    with pytest.raises(ExternalServiceError, match=r"^connection failed \(") as caught:
        await google.translate(http, ["Hallo"], "en")
    assert KEY not in str(caught.value)
    assert "127.0.0.1" not in str(caught.value)


def test_translator_for_reads_the_key_from_the_environment() -> None:
    """The provider's key comes from the named environment variable at call time; a
    missing variable is an error naming the variable, never a value."""
    cfg = TranslationSettings.model_validate(
        {"provider": "deepl", "flowLocale": "en", "apiKeyEnv": "MY_DEEPL"}
    )
    assert isinstance(translator_for(cfg, {"MY_DEEPL": "k"}), DeepLTranslator)
    with pytest.raises(ExternalServiceError, match=r"^environment variable MY_DEEPL is not set$"):
        translator_for(cfg, {})
    google = cfg.model_copy(update={"provider": "google"})
    assert isinstance(translator_for(google, {"MY_DEEPL": "k"}), GoogleTranslator)
    local = TranslationSettings(provider="openai", flow_locale="en", model="m")
    assert isinstance(translator_for(local, {}), OpenAiTranslator)


@pytest.mark.parametrize(
    ("raw_settings", "problem"),
    [
        ({"provider": "deepl", "flowLocale": "en"}, "apiKeyEnv is required"),
        ({"provider": "openai", "flowLocale": "en"}, "model is required"),
        ({"provider": "bing", "flowLocale": "en"}, "provider"),
        ({"provider": "openai", "flowLocale": "english!", "model": "m"}, "flowLocale"),
        ({"provider": "openai", "flowLocale": "en", "model": "m", "baseUrl": "x"}, "baseUrl"),
        ({"provider": "google", "flowLocale": "en", "apiKeyEnv": "has space"}, "apiKeyEnv"),
        ({"provider": "google", "flowLocale": "en", "apiKeyEnv": "K", "apiKey": "v"}, "apiKey"),
    ],
)
def test_settings_are_validated(raw_settings: dict[str, str], problem: str) -> None:
    """Incomplete or wrong translation settings are refused, naming the problem; a key
    itself cannot be stored (only the name of its environment variable)."""
    with pytest.raises(ValidationError) as caught:
        TranslationSettings.model_validate(raw_settings)
    assert problem in str(caught.value)
