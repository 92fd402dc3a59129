"""Python's cyclic garbage collector, set at ``flowhook serve`` start.

Almost everything the hot path allocates (requests, messages, turns, futures) is freed
by reference counting; the collector only has to find the rare cycles. With CPython's
defaults it still ran a young collection every 700 allocations and, every few hundred
messages, a full one over the whole heap: modules, SQLAlchemy's metadata, the compiled
flows, the FastAPI app, the caches. That was about a fifth of the event loop's CPU per
message at saturation (``bench turnpath``, collector callbacks timing each collection:
docs/performance.md, "Turn path CPU (2026-12-01)").

So, once the server is built: what exists then is moved out of the collector's sight
(``gc.freeze``: it lives as long as the process anyway), and a young collection runs
every ``YOUNG_THRESHOLD`` allocations instead of 700. What the hot path allocates dies
young or lives in bounded caches, so collections find the same cycles, a little later.
"""

from __future__ import annotations

import gc

# Net container allocations between young collections (CPython's default: 700).
YOUNG_THRESHOLD = 10_000


def tune_collector() -> None:
    """Freeze what exists now and collect young objects less often."""
    gc.collect()  # what is garbage already goes, it must not be frozen
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
