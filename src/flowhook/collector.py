"""The cyclic garbage collector's settings for the server process, set at ``flowhook serve``
start-up once everything is loaded.

Reference counting frees almost everything a message allocates (request, turn, futures,
rows) the moment it is done with; the cyclic collector is only for the rest. CPython's
default runs it every 700 net container allocations, a busy server allocates hundreds per
message, and each run walks every young object still alive then (the messages in flight),
promoting them so that older generations, up to a walk of every object of the process,
are collected again and again. A profile of one busy process on PostgreSQL put 15 % of the
server's CPU in the collector (``perf``: ``gc_collect_main``, ``visit_decref``,
``visit_reachable``; docs/performance.md, "PostgreSQL, one process").

- ``gc.freeze()`` once start-up is done: what is loaded by then (modules, flows, the
  schema, settings) lives as long as the process and is never walked again.
- the youngest generation is collected every ``YOUNG_THRESHOLD`` allocations: each run
  costs about as much (it walks what is alive, the work in flight), so runs 14 times rarer
  cost about 14 times less, and far fewer objects in flight get promoted.

Cycles are still collected, later: memory held by garbage cycles is bounded by what
``YOUNG_THRESHOLD`` allocations can leave behind.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000


def tune_collector() -> None:
    """Freeze what is alive now and collect the youngest generation less often."""
    gc.collect()  # start-up's garbage goes now, not frozen with the rest
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
