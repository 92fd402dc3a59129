"""Per-endpoint token buckets for the ingress (per process)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    def __init__(self) -> None:
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str, rate: float, burst: int | None) -> float | None:
        """Take one token. Returns None when allowed, else the seconds until one is free."""
        capacity = float(burst) if burst is not None else max(1.0, rate)
        now = time.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(capacity, now)
        else:
            bucket.tokens = min(capacity, bucket.tokens + (now - bucket.stamp) * rate)
            bucket.stamp = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / rate


def retry_after_header(seconds: float) -> int:
    """Retry-After is whole seconds: round up, never 0."""
    return max(1, math.ceil(seconds))
