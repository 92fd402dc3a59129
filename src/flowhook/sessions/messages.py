"""Where an accepted message stands: the one service the admin API and CLI share.

``pending`` (accepted, its turn not committed yet), ``done`` (its turn committed; the
outputs are in the outbox, see the deliveries), or ``failed`` (with the reason: message
id, trace id, the node when known). ``attempts`` counts runs started after the message
was read back from the inbox (a crash, a restart, a takeover).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from flowhook.endpoints.models import to_datetime
from flowhook.errors import InvalidRequest, NotFound
from flowhook.storage.message_log import MessageLog, MessageRecord
from flowhook.storage.store import SqlStore

MessageStatus = Literal["pending", "done", "failed"]


class MessageView(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    id: int
    endpoint_id: str
    session_id: str
    user_id: str
    trace_id: str
    kind: str
    status: str
    received_at: datetime
    processed_at: datetime | None
    attempts: int = Field(description="Runs started after a read-back of the inbox.")
    error: str | None = Field(description="Why it failed (status failed).")


class MessagePage(BaseModel):
    """One page of messages, in the API's list shape (``{items, nextCursor}``)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    items: list[MessageView]
    next_cursor: str | None = Field(
        description="Pass as ?cursor= for the next page; null: this is the last page."
    )


class MessageService:
    def __init__(self, store: SqlStore) -> None:
        self._log = MessageLog(store)

    async def get(self, message_id: int) -> MessageView:
        rec = await self._log.get(message_id)
        if rec is None:
            raise NotFound(f"no message with id {message_id}", id=message_id)
        return _view(rec)

    async def page(
        self,
        endpoint_id: str,
        *,
        status: MessageStatus | None = None,
        session_id: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> MessagePage:
        before = None
        if cursor is not None:
            if not cursor.isdigit():
                raise InvalidRequest(
                    "cursor is not one this API returned", field="cursor", expected="nextCursor"
                )
            before = int(cursor)
        records = await self._log.page(
            endpoint_id, status=status, session_id=session_id, before_id=before, limit=limit
        )
        more = len(records) == limit
        return MessagePage(
            items=[_view(r) for r in records],
            next_cursor=str(records[-1].id) if more and records else None,
        )


def _view(rec: MessageRecord) -> MessageView:
    return MessageView(
        id=rec.id,
        endpoint_id=rec.endpoint_id,
        session_id=rec.session_id,
        user_id=rec.user_id,
        trace_id=rec.trace_id,
        kind=rec.kind,
        status=rec.status,
        received_at=to_datetime(rec.received_at),
        processed_at=None if rec.processed_at is None else to_datetime(rec.processed_at),
        attempts=rec.attempts,
        error=rec.error,
    )
