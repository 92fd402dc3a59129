"""RetryPolicy: the pure decision table of when to retry a failed delivery."""

from __future__ import annotations

import pytest

from flowhook.delivery.retry import RetryPolicy
from flowhook.delivery.types import AttemptResult


class FixedRng:
    """Returns a fixed point of the jitter range: 0 = low end, 1 = high end."""

    def __init__(self, where: float) -> None:
        self.where = where

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.where


MID = FixedRng(0.5)
SCHEDULE = (5.0, 30.0, 300.0)


def failure(status: int | None = 500, retry_after: float | None = None) -> AttemptResult:
    return AttemptResult(status=status, duration_ms=1.0, error="x", retry_after=retry_after)


@pytest.mark.parametrize(
    ("attempts_done", "result", "expected"),
    [
        # plain failures walk the schedule, then give up
        (1, failure(500), 5.0),
        (2, failure(500), 30.0),
        (3, failure(500), 300.0),
        (4, failure(500), None),
        (9, failure(500), None),
        # no HTTP answer at all (timeout, refused) is retried like a 5xx
        (1, failure(None), 5.0),
        # redirects and client errors are failures too (only 2xx succeeds)
        (1, failure(301), 5.0),
        (1, failure(404), 5.0),
        # overload statuses back off twice as hard
        (1, failure(429), 10.0),
        (2, failure(502), 60.0),
        (2, failure(503), 60.0),
        (3, failure(504), 600.0),
        (4, failure(503), None),
        # Retry-After longer than the schedule is honoured ...
        (1, failure(503, retry_after=120.0), 120.0),
        # ... but bounded by max_retry_after (3600 by default)
        (1, failure(429, retry_after=86400.0), 3600.0),
        # ... and never shortens our own schedule
        (2, failure(429, retry_after=1.0), 60.0),
        # ... and never revives a delivery that ran out of attempts
        (4, failure(429, retry_after=10.0), None),
    ],
)
def test_decision_table(attempts_done: int, result: AttemptResult, expected: float | None) -> None:
    """Each (attempts so far, failure) pair maps to exactly the documented delay or give-up."""
    policy = RetryPolicy(SCHEDULE)
    assert policy.next_delay(attempts_done, result, MID) == expected


@pytest.mark.parametrize(("where", "expected"), [(0.0, 8.0), (0.5, 10.0), (1.0, 12.0)])
def test_jitter_spreads_by_twenty_percent(where: float, expected: float) -> None:
    """Jitter scales a 10 s delay into [8 s, 12 s], drawn from the injected generator."""
    policy = RetryPolicy([10.0])
    assert policy.next_delay(1, failure(), FixedRng(where)) == pytest.approx(expected)


def test_retry_after_is_not_shortened_by_jitter() -> None:
    """A Retry-After above the jittered delay is used as is, not scaled down."""
    policy = RetryPolicy([10.0], max_retry_after=100.0)
    assert policy.next_delay(1, failure(503, retry_after=50.0), FixedRng(0.0)) == 50.0


def test_empty_schedule_means_one_attempt() -> None:
    """With no schedule the first failure is final."""
    policy = RetryPolicy([])
    assert policy.max_attempts == 1
    assert policy.next_delay(1, failure(), MID) is None


def test_schedule_is_copied() -> None:
    """Mutating the list the policy was built from does not change the policy."""
    schedule = [1.0, 2.0]
    policy = RetryPolicy(schedule)
    schedule.append(3.0)
    assert policy.max_attempts == 3
    assert policy.schedule == (1.0, 2.0)


def test_success_is_not_a_retry_question() -> None:
    """Asking for a retry delay of a 2xx is a caller bug and says so."""
    with pytest.raises(ValueError, match="failed attempts"):
        RetryPolicy([1.0]).next_delay(1, AttemptResult(status=204, duration_ms=1.0), MID)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"schedule": [-1.0]},
        {"schedule": [float("inf")]},
        {"schedule": [1.0], "jitter": 1.0},
        {"schedule": [1.0], "jitter": -0.1},
        {"schedule": [1.0], "max_retry_after": -1.0},
        {"schedule": [1.0], "throttle_factor": 0.5},
    ],
)
def test_rejects_nonsense(kwargs: dict[str, object]) -> None:
    """Invalid settings fail at construction, not at the first retry."""
    with pytest.raises(ValueError):  # noqa: PT011 - any of several messages
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
