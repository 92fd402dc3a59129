"""The ``translation`` endpoint setting (off when null, the default)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from flowhook.nlu.connectors.config import ENV_NAME, check_http_url

DEFAULT_TRANSLATION_TIMEOUT = 5.0
LANGUAGE = r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$"

Provider = Literal["deepl", "google", "openai"]
Formality = Literal["default", "more", "less", "prefer_more", "prefer_less"]
DEFAULT_MARKER = "**"


class TranslationSettings(BaseModel):
    """Translate user input into ``flowLocale`` before the flow runs, and the flow's
    outputs back into the user's language."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )

    provider: Provider
    flow_locale: str = Field(
        pattern=LANGUAGE, max_length=35, description="The language the flow is written in."
    )
    api_key_env: str | None = Field(
        default=None,
        pattern=ENV_NAME,
        description="Environment variable holding the provider's API key (never stored). "
        "Required for deepl and google; for openai, none: no Authorization header.",
    )
    base_url: str | None = Field(
        default=None,
        max_length=2000,
        description="The API's root; default: the provider's public API.",
    )
    model: str | None = Field(default=None, min_length=1, max_length=200)
    user_language_data_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="A key of the message's data giving the user's language; else detected.",
    )
    timeout: float = Field(default=DEFAULT_TRANSLATION_TIMEOUT, gt=0, le=60)
    enabled: bool = Field(
        default=True,
        description="false: nothing is translated (the settings are kept; markers are "
        "still removed with alwaysRemoveMarkers).",
    )
    user_language: str | None = Field(
        default=None,
        pattern=LANGUAGE,
        max_length=35,
        description="The user's language, fixed; null: detected (or given in the data).",
    )
    set_language_on_execution: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="Detect the user's language up to the session's Nth translated "
        "message, then keep it; null: detect on every message.",
    )
    no_translation_marker: str = Field(
        default=DEFAULT_MARKER,
        min_length=1,
        max_length=10,
        description="Text between two markers passes untranslated (markers removed).",
    )
    always_remove_markers: bool = Field(
        default=False,
        description="Remove no-translation markers even when nothing is translated.",
    )
    deepl_glossary_input: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="deepl: glossary id for user messages (used when the user's language "
        "is known).",
    )
    deepl_glossary_output: str | None = Field(
        default=None, min_length=1, max_length=100, description="deepl: glossary id for outputs."
    )
    deepl_formality: Formality | None = Field(
        default=None, description="deepl: formality of the outputs in the user's language."
    )
    translate_data: bool = Field(
        default=False,
        description="Translate the string values of the message's and outputs' data too; "
        "false: data is never translated.",
    )

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else check_http_url(value)

    @model_validator(mode="after")
    def _complete(self) -> TranslationSettings:
        if self.provider in ("deepl", "google") and not self.api_key_env:
            raise ValueError(f"apiKeyEnv is required for provider {self.provider!r}")
        if self.provider == "openai" and not self.model:
            raise ValueError("model is required for provider 'openai'")
        return self
