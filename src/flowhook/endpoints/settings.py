"""The generic endpoint settings, stored as one JSON document per endpoint.

In the admin API they are flat fields of the endpoint (like the endpoint's other
settings); in storage they live in ``endpoints.settings`` so a new setting needs
no schema change. Read once per endpoint into the cache, never per message.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from flowhook.nlu.connectors.config import NluConnectorSettings
from flowhook.translation.config import TranslationSettings


class EndpointSettings(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )

    session_timeout_seconds: float | None = Field(
        default=None,
        ge=0,
        description="Idle seconds after which a session starts fresh; null: the server's "
        "default (FLOWHOOK_FLOW_SESSION_TIMEOUT); 0: never.",
    )
    rate_limit_per_second: float | None = Field(
        default=None,
        gt=0,
        description="Messages per second this endpoint's ingress accepts (per process); "
        "beyond it: 429 with Retry-After. null: no limit.",
    )
    rate_limit_burst: int | None = Field(
        default=None,
        ge=1,
        description="How many messages may arrive at once above the rate (default: one "
        "second's worth).",
    )
    mask_sensitive_logging: bool = Field(
        default=False,
        description="Mark every output disableSensitiveLogging: true, and keep message "
        "text and data out of every log line.",
    )
    nlu_connector: NluConnectorSettings | None = Field(
        default=None,
        description="An external NLU service (type rasa or json) that fills input.intent, "
        "intentScore and slots; null: the flow's built-in matcher. On failure the built-in "
        "matcher runs.",
    )
    translation: TranslationSettings | None = Field(
        default=None,
        description="Translate user input into the flow's locale and outputs back into the "
        "user's language (provider deepl, google or openai); null: off.",
    )
    store_transcripts: bool = Field(
        default=True, description="Keep each session's messages in and out (transcript API)."
    )
    transcript_retention_days: float = Field(
        default=30, gt=0, description="Transcripts older than this are deleted."
    )
    collect_analytics: bool = Field(
        default=True, description="Record per-turn statistics for the analytics API."
    )
    mask_ip_addresses: bool = Field(
        default=False,
        description="Store client IP addresses truncated (IPv4 /24, IPv6 /48), never whole.",
    )

    input_transformer: str | None = Field(
        default=None,
        max_length=300,
        description="Trusted 'module:function' reshaping each request into "
        "{userId, sessionId, text, data}.",
    )
    output_transformer: str | None = Field(
        default=None,
        max_length=300,
        description="Trusted 'module:function' reshaping each delivered payload.",
    )

    handover_url: str | None = Field(
        default=None,
        max_length=2000,
        description="The generic webhook handover provider: handover events and the "
        "user's messages while handed over are POSTed here.",
    )

    error_reply: str | None = Field(
        default=None,
        max_length=2000,
        description="Sent to the user, like any output, when a message's turn fails "
        "(instead of the flow's own error output); null: the flow's error output for flow "
        "errors, nothing for other failures.",
    )

    @classmethod
    def parse(cls, raw: str | None) -> EndpointSettings:
        return cls() if not raw else cls.model_validate(orjson.loads(raw))

    def dump(self) -> str:
        return orjson.dumps(self.model_dump(exclude_defaults=True)).decode()

    def merged(self, changes: dict[str, Any]) -> EndpointSettings:
        """These settings with ``changes`` (snake_case names; None resets to the default)."""
        values = self.model_dump()
        for name, value in changes.items():
            values[name] = EndpointSettings.model_fields[name].default if value is None else value
        return EndpointSettings.model_validate(values)


SETTING_FIELDS = tuple(EndpointSettings.model_fields)
