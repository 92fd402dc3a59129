"""Small statistics helpers shared by the bench processes."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100, nearest rank) of already sorted values."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summary_ms(seconds: Sequence[float]) -> dict[str, float | None]:
    """p50/p90/p99/max of latencies given in seconds, in milliseconds."""
    values = sorted(seconds)

    def ms(q: float) -> float | None:
        v = percentile(values, q)
        return None if v is None else round(v * 1000.0, 2)

    return {
        "p50": ms(50),
        "p90": ms(90),
        "p99": ms(99),
        "max": None if not values else round(values[-1] * 1000.0, 2),
    }
