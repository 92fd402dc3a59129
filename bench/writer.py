"""``python -m bench writer``: CPU of the group commit's SQL per message, in one thread.

The hot path's batch functions (``flowhook.storage.hotpath``) on a fresh SQLite file, with
no event loop, no HTTP and no other thread: per batch, ``size`` messages are accepted
(one commit), their turns committed with an output, two transcript entries and a
statistics row each (one commit), and each output's first attempt recorded as delivered
(one commit), as the writer thread does at saturation. The figure is the thread's CPU
time per message. With nothing else sharing the interpreter its spread between runs is
a few per cent, against tens of per cent for the writer's share in ``bench run``, so it
tells apart changes of a few microseconds (docs/performance.md, "The group commit's
pages and statements"). Another version is measured by putting its ``src`` first on
``PYTHONPATH``, as for ``bench turnpath``.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

OUTPUT = b'{"userId":"u","sessionId":"s","text":"Hello, I need help with my order","data":{}}'
TEXT = "Hello, I need help with my order"


def measure(batches: int, size: int, folder: Path) -> float:
    """CPU µs per message of ``batches`` batches of ``size`` messages, after a warm-up."""
    from flowhook.delivery.types import AttemptResult
    from flowhook.storage import migrate
    from flowhook.storage.engine import create_db_engine
    from flowhook.storage.hotpath import HotPath
    from flowhook.storage.records import InboundMessage, TranscriptEntry, TurnCommit, TurnStats

    url = f"sqlite:///{folder / 'writer.db'}"
    migrate.upgrade(url)
    engine = create_db_engine(url, pool_size=1)
    hot = HotPath("sqlite")
    conn = engine.connect()
    raw = conn.connection.driver_connection
    assert raw is not None

    def run(count: int, first: int) -> None:
        for b in range(count):
            msgs = [
                InboundMessage(
                    "ep-1",
                    f"s{(first + b * size + i) % 1000}",
                    f"u{i}",
                    f"t{first}-{b}-{i}",
                    TEXT,
                    {"exampleKey": "exampleValue"},
                    time.time(),
                )
                for i in range(size)
            ]
            ids = [i for i in hot.insert_messages(conn, msgs) if isinstance(i, int)]
            raw.commit()
            turns = [
                TurnCommit(
                    mid,
                    "ep-1",
                    m.session_id,
                    m.user_id,
                    {"n": b},
                    [OUTPUT],
                    transcript=[
                        TranscriptEntry("in", "user", m.text, m.data, m.trace_id),
                        TranscriptEntry("out", "bot", m.text, {}, m.trace_id),
                    ],
                    stats=TurnStats(1.0, None, False, 1),
                )
                for mid, m in zip(ids, msgs, strict=True)
            ]
            pending = hot.commit_turns(conn, turns)
            raw.commit()
            outcomes = [
                (p, AttemptResult(200, 1.0), "delivered", 1, 0.0)
                for turn in pending
                if isinstance(turn, list)
                for p in turn
            ]
            hot.record_outcomes(conn, outcomes)
            raw.commit()

    try:
        run(max(1, batches // 5), 0)
        started = time.thread_time()
        run(batches, 1_000_000)
        return (time.thread_time() - started) / (batches * size) * 1e6
    finally:
        conn.close()
        engine.dispose()


def main(batches: int = 300, size: int = 35, rounds: int = 5) -> None:
    import flowhook

    figures = []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as folder:
            figures.append(measure(batches, size, Path(folder)))
    print(
        f"writer CPU per message ({flowhook.__file__}): {batches} batches of {size}, "
        f"{rounds} rounds: min {min(figures):.1f} µs, median "
        f"{statistics.median(figures):.1f} µs ({', '.join(f'{f:.1f}' for f in figures)})"
    )
