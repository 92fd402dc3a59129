"""Real-time translation: an endpoint's ``translation`` setting translates each user
message into the flow's language before the flow runs, and each output back into the
user's language. Providers: DeepL, Google Cloud Translation (v2), and any
OpenAI-compatible chat model. A failing provider leaves the text untranslated.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from flowhook.nlu.connectors.http import ExternalServiceError
from flowhook.translation.base import Translation, Translator, same_language
from flowhook.translation.config import TranslationSettings
from flowhook.translation.deepl import DeepLTranslator
from flowhook.translation.google import GoogleTranslator
from flowhook.translation.openai_chat import OpenAiTranslator


def translator_for(
    settings: TranslationSettings, environ: Mapping[str, str] | None = None
) -> Translator:
    """The provider ``settings`` name, with its API key read from the environment now.

    Raises ``ExternalServiceError`` when a required key's variable is not set (the
    message names the variable, never a value).
    """
    env = environ if environ is not None else os.environ
    key = env.get(settings.api_key_env) if settings.api_key_env else None
    if settings.provider == "openai":
        assert settings.model is not None  # checked by TranslationSettings
        return OpenAiTranslator(
            key or None, model=settings.model, base_url=settings.base_url, timeout=settings.timeout
        )
    if not key:
        raise ExternalServiceError(f"environment variable {settings.api_key_env} is not set")
    if settings.provider == "deepl":
        return DeepLTranslator(key, base_url=settings.base_url, timeout=settings.timeout)
    return GoogleTranslator(key, base_url=settings.base_url, timeout=settings.timeout)


__all__ = [
    "DeepLTranslator",
    "ExternalServiceError",
    "GoogleTranslator",
    "OpenAiTranslator",
    "Translation",
    "TranslationSettings",
    "Translator",
    "same_language",
    "translator_for",
]
