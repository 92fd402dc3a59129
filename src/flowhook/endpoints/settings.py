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
    mask_sensitive_analytics: bool = Field(
        default=False,
        description="Keep the user's text (as sent and as translated), the message data and "
        "the client's address out of transcripts and analytics; logs are governed by "
        "maskSensitiveLogging.",
    )
    input_sanitization: bool = Field(
        default=True,
        description="Strip harmful HTML (scripts, event handlers, javascript: URLs) from the "
        "user's text and data strings, after any input transformer.",
    )
    contact_profiles: bool = Field(
        default=True,
        description="Keep a profile per user across sessions (profile in flows); off: flows "
        "see an empty profile and nothing is stored.",
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
    execution_finished_transformer: str | None = Field(
        default=None,
        max_length=300,
        description="rest endpoints: trusted 'module:function' reshaping the whole answer "
        "({userId, sessionId, traceId, outputs}).",
    )
    inject_transformer: str | None = Field(
        default=None,
        max_length=300,
        description="Trusted 'module:function' reshaping inject requests (default: the "
        "input transformer).",
    )
    notify_transformer: str | None = Field(
        default=None,
        max_length=300,
        description="Trusted 'module:function' reshaping notify requests (default: the "
        "input transformer).",
    )
    abort_on_transformer_error: bool = Field(
        default=False,
        description="false: when a transformer fails, the untransformed message or output "
        "goes on and the error is recorded; true: the request is refused (400), the output "
        "dropped, the rest answer a 502.",
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

    copilot_flow: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="A flow that runs on every user and agent message while the session is "
        "handed over; its outputs go to the handover provider as copilot events and to the "
        "copilot API, never to the user.",
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
TRANSFORMER_FIELDS = (
    "input_transformer",
    "output_transformer",
    "execution_finished_transformer",
    "inject_transformer",
    "notify_transformer",
)
