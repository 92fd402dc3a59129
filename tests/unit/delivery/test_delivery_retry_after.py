"""parse_retry_after: reading a receiver's Retry-After header (seconds or HTTP-date)."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from flowhook.delivery.transport import parse_retry_after

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC).timestamp()


def http_date(offset: float) -> str:
    return format_datetime(datetime.fromtimestamp(NOW + offset, tz=UTC), usegmt=True)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("-3", None),
        ("nan", None),
        ("inf", None),
        ("soon", None),
        (http_date(90), 90.0),
        (http_date(-30), 0.0),  # a date in the past: retry now
        ("Sat, 01 Mar 2025 12:00:10 -0000", None),  # RFC 5322 "unknown zone": untrusted
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    """Delta-seconds and HTTP-dates both give seconds from now; garbage gives None."""
    assert parse_retry_after(header, NOW) == expected
