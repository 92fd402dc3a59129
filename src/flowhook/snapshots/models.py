"""What an import answers (admin API and CLI): what happened to each flow and endpoint,
and what the operator has to do next (new API keys, lost secrets)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

OnConflict = Literal["fail", "skip", "replace"]


class _Api(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class FlowImported(_Api):
    file: str
    action: Literal["created", "replaced", "unchanged", "skipped"]


class EndpointImported(_Api):
    name: str
    id: str
    endpoint_url: str = Field(description="Where clients send messages now (a new URL token).")
    action: Literal["created", "replaced", "skipped"]
    needs_api_key: bool = Field(
        description="authMethod is apiKey and the endpoint has no key: generate one."
    )
    lost_secrets: list[str] = Field(
        description="Secrets it had in the source that were not in the snapshot: set them again."
    )
    ignored_settings: list[str] = Field(
        default_factory=list,
        description="Settings of the snapshot this installation does not know (not applied).",
    )


class ImportResult(_Api):
    flows: list[FlowImported]
    endpoints: list[EndpointImported]
    needs_api_key: list[str] = Field(description="Names of endpoints that need a new API key.")
    lost_secrets: dict[str, list[str]] = Field(
        description="Endpoint name -> secrets to set again (webhookPassword, signingSecret)."
    )
    flows_changed: bool = Field(
        description="Flow files were written: other running servers load them on restart."
    )
