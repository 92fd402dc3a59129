"""Writing delivery outcomes to the ledger (the outbox and its attempt log).

A retry's due time may fail to be written: the outbox still holds the output pending and
it is attempted again (at least once). A *final* outcome (delivered, failed) must be
written before the session's next output is sent: otherwise the outbox would send this
one again after the later ones (same webhook-id, out of order).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)

# Backoff of a final outcome's write, retried until it is taken.
RETRY_FIRST = 0.05
RETRY_MAX = 5.0


async def record(what: str, call: Awaitable[None]) -> bool:
    """Write a retry; returns whether the ledger took it."""
    try:
        await call
    except Exception as exc:
        _log_error(what, exc)
        return False
    return True


async def record_final(
    what: str,
    call: Callable[[], Awaitable[None]],
    *,
    on_refused: Callable[[], None] | None = None,
) -> None:
    """Write a final outcome, retrying (backing off) until the ledger takes it. The POST
    is not repeated; a crash meanwhile leaves the output pending, sent again first.
    ``on_refused`` is called after each refusal."""
    delay = RETRY_FIRST
    while True:
        try:
            await call()
            return
        except Exception as exc:
            _log_error(what, exc, retry_in=delay)
            if on_refused is not None:
                on_refused()
        await asyncio.sleep(delay)
        delay = min(delay * 2, RETRY_MAX)


def _log_error(what: str, exc: Exception, retry_in: float | None = None) -> None:
    # First line only: a database error's later lines quote the bound parameters (bodies).
    first_line = (str(exc).splitlines() or [""])[0][:200]
    log.error(
        "delivery ledger error",
        outcome=what,
        error_type=type(exc).__name__,
        error=first_line,
        retry_in=retry_in,
    )
