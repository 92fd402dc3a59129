"""Inbound messages for storage tests: one endpoint, one user, the text naming the trace."""

from __future__ import annotations

import time
from typing import Any

from flowhook.storage.records import InboundMessage


def inbound(
    session: str = "s1",
    text: str = "hi",
    *,
    data: dict[str, Any] | None = None,
    generation: int | None = None,
) -> InboundMessage:
    """A message of user "u1" on endpoint "ep-1", received now."""
    return InboundMessage(
        endpoint_id="ep-1",
        session_id=session,
        user_id="u1",
        trace_id="t-" + text,
        text=text,
        data=data,
        received_at=time.time(),
        generation=generation,
    )
