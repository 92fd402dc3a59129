"""The admin API's shapes for endpoints and API keys (JSON in camelCase, like the reference)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from flowhook.nlu.connectors.config import NluConnectorSettings
from flowhook.translation.config import TranslationSettings

AuthMethod = Literal["none", "apiKey"]


class _Api(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


# What check_webhook_url accepts, as a schema pattern: http(s), a host, no credentials.
URL_PATTERN = (
    r"^[Hh][Tt][Tt][Pp][Ss]?://([A-Za-z0-9._~-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?([/?#]\S*)?$"
)

_URL = re.compile(URL_PATTERN)


def check_webhook_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.username or parts.password:
        raise ValueError("put credentials in webhookUser/webhookPassword, not in the URL")
    if not _URL.match(value) or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an absolute http:// or https:// URL")
    return value


EndpointType = Literal["webhook", "rest"]


def _webhook_url_rule(schema: dict[str, Any]) -> None:
    """The schema says what create checks: a webhook endpoint needs a webhookUrl."""
    schema["anyOf"] = [
        {"required": ["type"], "properties": {"type": {"const": "rest"}}},
        {"required": ["webhookUrl"], "properties": {"webhookUrl": {"type": "string"}}},
    ]


def _not_null(*fields: str) -> Callable[[dict[str, Any]], None]:
    """PATCH: these fields may be left out but never set to null (the schema says so)."""

    def edit(schema: dict[str, Any]) -> None:
        for name in fields:
            prop = schema["properties"][name]
            options = [o for o in prop.pop("anyOf", []) if o.get("type") != "null"]
            if len(options) == 1:
                prop.update(options[0])
            elif options:
                prop["anyOf"] = options
            prop.pop("default", None)

    return edit


class _SettingFields(_Api):
    """The generic settings, as flat fields (see flowhook.endpoints.settings)."""

    session_timeout_seconds: float | None = Field(default=None, ge=0)
    rate_limit_per_second: float | None = Field(default=None, gt=0)
    rate_limit_burst: int | None = Field(default=None, ge=1)
    mask_sensitive_logging: bool | None = None
    nlu_connector: NluConnectorSettings | None = Field(
        default=None,
        description='{"type": "rasa"|"json", "url", ...}; null: the built-in matcher.',
    )
    translation: TranslationSettings | None = Field(
        default=None,
        description='{"provider": "deepl"|"google"|"openai", "flowLocale", "apiKeyEnv", ...}; '
        "null: off.",
    )
    store_transcripts: bool | None = None
    transcript_retention_days: float | None = Field(default=None, gt=0)
    collect_analytics: bool | None = None
    mask_ip_addresses: bool | None = None
    mask_sensitive_analytics: bool | None = None
    input_sanitization: bool | None = None
    contact_profiles: bool | None = None
    input_transformer: str | None = Field(default=None, max_length=300)
    output_transformer: str | None = Field(default=None, max_length=300)
    execution_finished_transformer: str | None = Field(default=None, max_length=300)
    inject_transformer: str | None = Field(default=None, max_length=300)
    notify_transformer: str | None = Field(default=None, max_length=300)
    abort_on_transformer_error: bool | None = None
    handover_url: str | None = Field(
        default=None, max_length=2000, json_schema_extra={"pattern": URL_PATTERN}
    )
    error_reply: str | None = Field(
        default=None,
        max_length=2000,
        description="Sent to the user like any output when a message's turn fails.",
    )
    copilot_flow: str | None = Field(default=None, min_length=1, max_length=200)

    @field_validator("handover_url")
    @classmethod
    def _handover_url(cls, value: str | None) -> str | None:
        return None if value is None else check_webhook_url(value)


class EndpointCreate(_SettingFields):
    model_config = ConfigDict(json_schema_extra=_webhook_url_rule)

    name: str = Field(min_length=1, max_length=200)
    flow: str = Field(min_length=1, max_length=200)
    type: EndpointType = Field(
        default="webhook",
        description="webhook: outputs are POSTed to webhookUrl; rest: outputs are returned "
        "in the HTTP answer to the message.",
    )
    webhook_url: str | None = Field(
        default=None, max_length=2000, json_schema_extra={"pattern": URL_PATTERN}
    )
    webhook_user: str | None = Field(default=None, max_length=200)
    webhook_password: str | None = Field(default=None, max_length=1000)
    auth_method: AuthMethod = "none"
    locale: str | None = Field(default=None, max_length=35)
    active: bool = True
    signing: bool = Field(
        default=False, description="Generate a signing secret (returned once, in the answer)."
    )

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else check_webhook_url(value)


class EndpointUpdate(_SettingFields):
    """PATCH: only the fields present change; null clears an optional field (the others
    are not nullable in the schema, and null is refused for them)."""

    model_config = ConfigDict(
        json_schema_extra=_not_null(
            "name",
            "flow",
            "type",
            "webhookUrl",
            "authMethod",
            "active",
            "signing",
            "deliveryEnabled",
        )
    )

    name: str | None = Field(default=None, min_length=1, max_length=200)
    flow: str | None = Field(default=None, min_length=1, max_length=200)
    type: EndpointType | None = None
    webhook_url: str | None = Field(
        default=None, max_length=2000, json_schema_extra={"pattern": URL_PATTERN}
    )
    webhook_user: str | None = Field(default=None, max_length=200)
    webhook_password: str | None = Field(default=None, max_length=1000)
    auth_method: AuthMethod | None = None
    locale: str | None = Field(default=None, max_length=35)
    active: bool | None = None
    signing: bool | None = Field(
        default=None,
        description="false stops signing and deletes the secrets; to sign, rotate the secret.",
    )
    delivery_enabled: bool | None = Field(
        default=None,
        description=(
            "true switches delivery back on (after a 410 Gone, or a pause) and sends what "
            "is pending; false pauses delivery: outputs are kept, not attempted."
        ),
    )

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else check_webhook_url(value)


class EndpointView(_Api):
    id: str
    name: str
    type: EndpointType
    flow: str
    endpoint_url: str
    url_token: str
    auth_method: AuthMethod
    webhook_url: str | None
    webhook_user: str | None
    has_webhook_password: bool
    locale: str | None
    active: bool
    signing: bool
    signing_secret_rotated_at: datetime | None
    delivery_disabled: bool = Field(
        description="true: outputs are kept pending and not attempted (see the reason)."
    )
    delivery_disabled_reason: str | None
    delivery_disabled_at: datetime | None
    session_timeout_seconds: float | None
    rate_limit_per_second: float | None
    rate_limit_burst: int | None
    mask_sensitive_logging: bool
    nlu_connector: NluConnectorSettings | None = None
    translation: TranslationSettings | None = None
    store_transcripts: bool
    transcript_retention_days: float
    collect_analytics: bool
    mask_ip_addresses: bool
    mask_sensitive_analytics: bool
    input_sanitization: bool
    contact_profiles: bool
    input_transformer: str | None
    output_transformer: str | None
    execution_finished_transformer: str | None
    inject_transformer: str | None
    notify_transformer: str | None
    abort_on_transformer_error: bool
    handover_url: str | None
    error_reply: str | None = None
    copilot_flow: str | None
    created_at: datetime
    updated_at: datetime


class EndpointCreated(EndpointView):
    signing_secret: str | None = Field(
        default=None, description="Shown this once (with signing: true); stored encrypted."
    )


class SigningSecretRotated(_Api):
    id: str
    signing_secret: str = Field(description="Shown this once; stored encrypted.")
    rotated_at: datetime
    previous_secret_expires_at: datetime | None = Field(
        description="Until then the previous secret signs too (null: there was none)."
    )


class ApiKeyCreate(_Api):
    name: str | None = Field(default=None, max_length=200)


class ApiKeyCreated(_Api):
    id: str
    name: str | None
    key: str = Field(description="Shown this once; only a hash is stored.")
    key_prefix: str
    created_at: datetime


class ApiKeyView(_Api):
    id: str
    name: str | None
    key_prefix: str
    created_at: datetime
    last_used_at: datetime | None


def to_datetime(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)
