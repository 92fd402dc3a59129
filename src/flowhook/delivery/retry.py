"""When to try a failed delivery again, and when to give up.

``RetryPolicy`` is a pure value object: it holds no state and does no I/O, so the
whole decision table is testable with a seeded random generator.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from flowhook.delivery.types import AttemptResult

# Statuses that say "you are sending too fast / I am overloaded": backing off only
# by the normal schedule would keep hammering a receiver that asked for air.
THROTTLE_STATUSES: frozenset[int] = frozenset({429, 502, 503, 504})

DEFAULT_MAX_RETRY_AFTER = 3600.0


class SupportsUniform(Protocol):
    """The part of ``random.Random`` the policy needs (so tests can pass a stub)."""

    def uniform(self, a: float, b: float) -> float: ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff schedule for one delivery.

    ``schedule[i]`` is the delay in seconds before retry ``i + 1``; once every entry
    is used the delivery is given up (so at most ``len(schedule) + 1`` attempts).
    Only a 2xx answer is a success: redirects are failures like any other.

    - ``jitter``: each schedule delay is scaled by a random factor in
      ``[1 - jitter, 1 + jitter]`` so that many outputs failing together do not
      retry in lockstep.
    - ``throttle_factor``: for 429/502/503/504 the schedule delay is multiplied by
      this (before jitter).
    - ``max_retry_after``: a receiver's ``Retry-After`` is honoured when it asks for
      more than the schedule would wait, but never beyond this bound (a hostile or
      buggy receiver must not park an output for days).
    """

    schedule: Sequence[float]
    jitter: float = 0.2
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER
    throttle_factor: float = 2.0
    _delays: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        delays = tuple(float(d) for d in self.schedule)
        if any(not math.isfinite(d) or d < 0 for d in delays):
            raise ValueError("retry schedule delays must be finite and >= 0")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")
        if self.max_retry_after < 0:
            raise ValueError("max_retry_after must be >= 0")
        if self.throttle_factor < 1:
            raise ValueError("throttle_factor must be >= 1")
        # Frozen dataclass: store the normalised copy so a caller mutating its list
        # later cannot change a policy that is already in use.
        object.__setattr__(self, "schedule", delays)
        object.__setattr__(self, "_delays", delays)

    @property
    def max_attempts(self) -> int:
        """Total attempts (first try included) before an output is given up."""
        return len(self._delays) + 1

    def next_delay(
        self, attempts_done: int, result: AttemptResult, rng: SupportsUniform
    ) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to give up.

        ``attempts_done`` counts every attempt made so far, the failed one included
        (so it is at least 1). ``result`` must be a failure.
        """
        if result.ok:
            raise ValueError("next_delay() is only defined for failed attempts")
        if attempts_done < 1:
            raise ValueError("attempts_done must be >= 1")
        index = attempts_done - 1
        if index >= len(self._delays):
            return None
        base = self._delays[index]
        if result.status in THROTTLE_STATUSES:
            base *= self.throttle_factor
        delay = base * rng.uniform(1.0 - self.jitter, 1.0 + self.jitter) if self.jitter else base
        if result.retry_after is not None and result.retry_after > delay:
            # The receiver knows best when it will be ready, within our bound; we
            # never wait less than our own schedule says.
            delay = max(delay, min(result.retry_after, self.max_retry_after))
        return delay
