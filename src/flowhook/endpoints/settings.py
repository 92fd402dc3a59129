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
