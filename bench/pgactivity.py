"""What flowhook's PostgreSQL connections are doing, sampled from ``pg_stat_activity``.

Run it next to a ``bench run --backend postgres`` (in another shell, started as the
phase of interest starts). Every few milliseconds it reads the state, wait event and
statement of each client backend of the bench's scratch databases (any database whose
name starts with ``--database-prefix``, ``flowhook_bench_`` by default) and counts them.
A connection mostly ``idle in transaction`` waits for its client between the statements
of a transaction; ``active`` with no wait event runs the statement shown; ``Lock`` waits
for another transaction; ``IO`` waits for the disk.
"""

from __future__ import annotations

import time
from collections import Counter

_ACTIVITY = (
    "SELECT application_name, state, wait_event_type, wait_event, left(query, 48) "
    "FROM pg_stat_activity WHERE backend_type = 'client backend' "
    "AND pid <> pg_backend_pid() AND datname LIKE %s"
)

Key = tuple[str, str, str, str, str]


def sample(
    url: str, seconds: float, interval: float, database_prefix: str
) -> tuple[int, Counter[Key]]:
    """Samples taken, and how often each (application, state, wait type, wait event,
    statement) was seen; the statement only for active backends."""
    import psycopg

    counts: Counter[Key] = Counter()
    taken = 0
    with psycopg.connect(url, autocommit=True) as conn:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for app, state, wait_type, wait_event, query in conn.execute(
                _ACTIVITY, (database_prefix + "%",)
            ):
                shown = query if state == "active" else ""
                counts[(app or "", state or "", wait_type or "", wait_event or "", shown)] += 1
            taken += 1
            time.sleep(interval)
    return taken, counts


def report(taken: int, counts: Counter[Key], top: int = 30) -> list[str]:
    lines = [
        f"{taken} samples; seen (count, share of samples): application, state, wait, statement"
    ]
    for (app, state, wait_type, wait_event, query), n in counts.most_common(top):
        wait = f"{wait_type}:{wait_event}" if wait_type else "-"
        lines.append(f"{n:7d} {n / max(taken, 1):6.2f}  {app[:24]:24} {state:20} {wait:22} {query}")
    return lines
