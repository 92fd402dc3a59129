"""Jinja filters: times, durations, rates and JSON as the console shows them (UTC)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import orjson
from jinja2 import Environment


def _seconds(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, int | float):
        return float(value)
    return None


def when(value: Any) -> str:
    """``2026-11-30 15:20:19 UTC``; an em dash for nothing."""
    ts = _seconds(value)
    if ts is None:
        return "—"
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(value: Any) -> str:
    ts = _seconds(value)
    return "" if ts is None else datetime.fromtimestamp(ts, tz=UTC).isoformat()


def ago(value: Any, now: float | None = None) -> str:
    """How long ago, roughly: ``12 s``, ``5 min``, ``3 h``, ``2 d``."""
    ts = _seconds(value)
    if ts is None:
        return "—"
    return duration(max(0.0, (time.time() if now is None else now) - ts))


def duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return "—"
    s = float(seconds)
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{s / 60:.0f} min"
    if s < 86400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} d"


def percent(value: Any) -> str:
    if not isinstance(value, int | float):
        return "—"
    return f"{100 * float(value):.1f} %"


def pretty_json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


def as_options(names: list[str], current: str | None = None) -> list[tuple[str, str]]:
    """Select options for names, keeping a current value that is no longer offered."""
    options = [(n, n) for n in names]
    if current and current not in names:
        options.insert(0, (current, f"{current} (not loaded)"))
    return options


def install(env: Environment) -> None:
    env.filters.update(
        as_options=as_options,
        when=when,
        iso=iso,
        ago=ago,
        epoch=_seconds,  # a time (datetime or Unix seconds) as Unix seconds, for arithmetic
        duration=duration,
        percent=percent,
        pretty_json=pretty_json,
    )
