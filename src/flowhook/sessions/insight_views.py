"""The shapes the admin API and the CLI show transcripts and analytics in (camelCase,
ISO 8601 times), built from what ``storage.insights`` reads."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class _Api(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


def iso(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


class TranscriptEntry(_Api):
    id: int
    at: datetime
    direction: str = Field(description="in: from the user; out: to the user's webhook.")
    source: str | None = Field(description="Who wrote it: user, bot, agent, ...")
    user_id: str | None
    text: str | None = Field(description="null when the endpoint masks sensitive logging.")
    data: Any = Field(description="null when the endpoint masks sensitive logging.")
    trace_id: str | None
    client_ip: str | None


class IntentCount(_Api):
    intent: str
    count: int


class DeliveryCounts(_Api):
    delivered: int
    failed: int
    pending: int
    success_rate: float | None = Field(description="delivered / (delivered + failed).")


class Latency(_Api):
    p50: float | None
    p95: float | None


class Analytics(_Api):
    since: datetime
    until: datetime
    messages_in: int
    messages_out: int
    turns: int
    sessions: int
    intents: list[IntentCount]
    handovers: int
    deliveries: DeliveryCounts
    turn_latency_ms: Latency = Field(description="Accepted to committed, in milliseconds.")


def transcript_entry(row: dict[str, Any]) -> TranscriptEntry:
    return TranscriptEntry.model_validate({**row, "at": iso(row["at"])})


def analytics_view(doc: dict[str, Any]) -> Analytics:
    return Analytics.model_validate({**doc, "since": iso(doc["since"]), "until": iso(doc["until"])})
