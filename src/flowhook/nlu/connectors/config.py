"""The ``nluConnector`` endpoint setting: which external NLU service fills ``input.intent``.

``null`` (the default) keeps the built-in matcher of the flow. Stored in the
endpoint's settings document; in the admin API a nested object in camelCase.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
DEFAULT_NLU_TIMEOUT = 3.0


def check_http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an absolute http:// or https:// URL")
    if parts.username or parts.password:
        raise ValueError("credentials do not belong in the URL: name an environment variable")
    return value


class _Nested(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class _ConnectorBase(_Nested):
    url: str = Field(max_length=2000)
    timeout: float = Field(default=DEFAULT_NLU_TIMEOUT, gt=0, le=60)
    min_score: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="An intent scoring below this becomes null (input.intent).",
    )
    api_key_env: str | None = Field(
        default=None,
        pattern=ENV_NAME,
        description="Environment variable holding a token (never stored).",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_http_url(value)


class RasaConnectorSettings(_ConnectorBase):
    """A Rasa server: ``POST {url}/model/parse``; the token (if any) goes as ``?token=``."""

    type: Literal["rasa"]


class JsonConnectorSettings(_ConnectorBase):
    """Any JSON API: ``POST {url}`` with ``body`` (``${text}`` etc. substituted); the
    intent, score and slots are read from the reply at dotted paths. The token (if
    any) goes as ``Authorization: Bearer``."""

    type: Literal["json"]
    body: dict[str, Any] = Field(default_factory=lambda: {"text": "${text}"})
    intent_path: str = Field(default="intent", min_length=1, max_length=200)
    score_path: str | None = Field(default="score", max_length=200)
    slots_path: str | None = Field(default="slots", max_length=200)


NluConnectorSettings = Annotated[
    RasaConnectorSettings | JsonConnectorSettings, Field(discriminator="type")
]
