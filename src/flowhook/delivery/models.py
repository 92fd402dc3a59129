"""The admin API's shapes for deliveries and their attempt log (camelCase JSON)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

DeliveryStatus = Literal["pending", "delivered", "failed"]


class _Api(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class AttemptView(_Api):
    at: datetime
    status_code: int | None = Field(description="The receiver's HTTP status; null: no answer.")
    duration_ms: float
    error: str | None
    response_body: str | None = Field(description="The first bytes of the answer (capped).")


class DeliveryView(_Api):
    id: str = Field(description="The delivery id, sent as the webhook-id header.")
    endpoint_id: str
    session_id: str
    status: DeliveryStatus
    attempt_count: int = Field(description="Attempts since it was created or last replayed.")
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None = Field(description="Pending: when it is tried next.")
    created_at: datetime
    finished_at: datetime | None
    replayed_at: datetime | None


class DeliveryDetail(DeliveryView):
    payload: Any = Field(description="The exact JSON document POSTed to the webhook.")
    attempts: list[AttemptView] = Field(
        description="Every attempt, replays included, oldest first."
    )


class DeliveryPage(_Api):
    items: list[DeliveryView]
    next_cursor: str | None = Field(description="Pass as cursor for the next (older) page.")


class ReplayFailedRequest(_Api):
    since: datetime | None = Field(default=None, description="Created at or after (ISO 8601).")
    until: datetime | None = Field(default=None, description="Created before (ISO 8601).")


class ReplayFailedAnswer(_Api):
    endpoint_id: str
    replayed: int = Field(description="Failed deliveries set back to pending.")
    delivery_reenabled: bool = Field(description="The endpoint's delivery was off; now on.")
