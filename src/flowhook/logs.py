"""structlog set-up: readable lines on a console, JSON lines in production."""

from __future__ import annotations

import logging
import sys
import time

import structlog


def configure_logging(level: str = "info", fmt: str = "console") -> None:
    global _traffic_on
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    _traffic_on = numeric <= logging.INFO
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


# -- the two lines an operator watches: a message accepted, a delivery's outcome ----------

_traffic = structlog.get_logger("flowhook.traffic")
_TRACE = b'"traceId":"'
# Whether info lines are written. Above info the filtering logger drops them, but only
# after the call's arguments are built (the traceId found in the body, the latency
# rounded, the keywords): two lines per message, 2.6 % of a busy server's samples at
# warning level (docs/performance.md, "Taking turns"). Checked first, they cost nothing.
_traffic_on = True


def message_accepted(
    *,
    trace_id: str,
    endpoint_id: str,
    session_id: str,
    status: int,
    started: float,
    masked: bool,
) -> None:
    """One info line per committed message. An endpoint that masks sensitive logging
    keeps its session ids out too (never text or data: no line carries those)."""
    if not _traffic_on:
        return
    _traffic.info(
        "message accepted",
        trace_id=trace_id,
        endpoint_id=endpoint_id,
        session_id="***" if masked else session_id,
        status=status,
        latency_ms=round((time.perf_counter() - started) * 1000.0, 2),
    )


def delivery_outcome(
    outcome: str,
    *,
    endpoint_id: str,
    delivery_id: str,
    body: bytes,
    status: int | None,
    latency_ms: float,
    attempts: int,
) -> None:
    """One info line per delivery that is settled (delivered or failed for good)."""
    if not _traffic_on:
        return
    _traffic.info(
        f"delivery {outcome}",
        trace_id=trace_id_in(body),
        endpoint_id=endpoint_id,
        delivery_id=delivery_id,
        status=status,
        latency_ms=round(latency_ms, 2),
        attempts=attempts,
    )


def trace_id_in(body: bytes) -> str | None:
    """The traceId of a delivered body, found without parsing it (it is on every path)."""
    start = body.find(_TRACE)
    if start < 0:
        return None
    start += len(_TRACE)
    end = body.find(b'"', start)
    return body[start:end].decode("utf-8", "replace") if end > start else None
