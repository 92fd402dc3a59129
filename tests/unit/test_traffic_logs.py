"""The operator's two log lines: a message accepted, a delivery settled."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import structlog

from flowhook import logs


class Recorder:
    """Stands in for the structlog logger (configured once, cached): records info lines."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []

    def info(self, event: str, **fields: Any) -> None:
        self.lines.append({"event": event, "log_level": "info", **fields})


@contextmanager
def captured(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    recorder = Recorder()
    monkeypatch.setattr(logs, "_traffic", recorder)
    monkeypatch.setattr(logs, "_traffic_on", True)  # the suite logs at warning level
    yield recorder.lines


def test_accepted_message_line_names_trace_endpoint_status_latency(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One info line per accepted message; an endpoint that masks keeps its session ids
    out, and no line ever carries the text."""
    with captured(monkeypatch) as lines:
        for masked in (False, True):
            logs.message_accepted(
                trace_id="t-1",
                endpoint_id="ep",
                session_id="secret-session",
                status=202,
                started=time.perf_counter(),
                masked=masked,
            )
    plain, hidden = lines
    assert plain["event"] == "message accepted"
    assert plain["log_level"] == "info"
    assert (plain["trace_id"], plain["endpoint_id"], plain["status"]) == ("t-1", "ep", 202)
    assert plain["latency_ms"] >= 0
    assert plain["session_id"] == "secret-session"
    assert hidden["session_id"] == "***"


def test_delivery_line_finds_the_trace_id_in_the_body(monkeypatch: pytest.MonkeyPatch) -> None:
    """A settled delivery logs its outcome, status, latency and the body's traceId."""
    body = b'{"userId":"u","AIOutput":{"text":"hi","traceId":"endpoint-x-1","data":{}}}'
    with captured(monkeypatch) as lines:
        logs.delivery_outcome(
            "delivered",
            endpoint_id="ep",
            delivery_id="msg_1",
            body=body,
            status=200,
            latency_ms=12.345,
            attempts=1,
        )
    (line,) = lines
    assert (line["event"], line["trace_id"], line["latency_ms"]) == (
        "delivery delivered",
        "endpoint-x-1",
        12.35,
    )
    assert "hi" not in str(line)
    assert logs.trace_id_in(b"{}") is None


def test_above_info_the_lines_cost_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Configured above info, neither line is built: no traceId is looked for in the
    body and the logger is not called. Configured at info, both are written again."""
    recorder = Recorder()
    monkeypatch.setattr(logs, "_traffic", recorder)
    # structlog's configuration stays the suite's (loggers cached under another one would
    # escape other tests' capture); only the level switch moves, and is put back after.
    monkeypatch.setattr(structlog, "configure", lambda **_kw: None)
    monkeypatch.setattr(logs, "_traffic_on", logs._traffic_on)
    real_lookup = logs.trace_id_in

    def no_lookup(_body: bytes) -> str:
        raise AssertionError("the body was searched for a line nobody writes")

    monkeypatch.setattr(logs, "trace_id_in", no_lookup)
    logs.configure_logging("warning")
    send_both()
    assert recorder.lines == []
    logs.configure_logging("info")
    monkeypatch.setattr(logs, "trace_id_in", real_lookup)
    send_both()
    assert [line["event"] for line in recorder.lines] == [
        "message accepted",
        "delivery delivered",
    ]
    assert recorder.lines[1]["trace_id"] == "t-1"


def send_both() -> None:
    logs.message_accepted(
        trace_id="t-1",
        endpoint_id="ep",
        session_id="s",
        status=202,
        started=time.perf_counter(),
        masked=False,
    )
    logs.delivery_outcome(
        "delivered",
        endpoint_id="ep",
        delivery_id="msg_1",
        body=b'{"traceId":"t-1"}',
        status=200,
        latency_ms=1.0,
        attempts=1,
    )
