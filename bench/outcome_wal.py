"""``python -m bench outcome-wal``: bytes SQLite writes to its WAL per outcome update.

Plain ``sqlite3``, no flowhook: ``rows`` outputs with a body of ``body_chars`` characters,
stored as a turn stores them (pending, never attempted), then the updates of the small
columns that an output's attempts make, in the order they come: three failed attempts
and the delivery. Each step updates every row, one row per transaction (as flowhook's
group commit does for a lone outcome), and the WAL bytes of the step are divided by the
rows. Two layouts: the body inside the row, before the small columns (the outbox until
migration 0014), and the body in a table of its own (``outbox_bodies``). The WAL is
truncated before the updates and never checkpointed during them (docs/performance.md,
"Outcome updates rewrote the body").
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from pathlib import Path

SMALL_COLUMNS = (
    "status TEXT NOT NULL, attempts INTEGER NOT NULL, not_before REAL NOT NULL, "
    "last_status INTEGER, last_error TEXT, finished_at REAL"
)
LAYOUTS = {
    "in row": (f"CREATE TABLE o (id INTEGER PRIMARY KEY, body TEXT NOT NULL, {SMALL_COLUMNS})",),
    "apart": (
        f"CREATE TABLE o (id INTEGER PRIMARY KEY, {SMALL_COLUMNS})",
        "CREATE TABLE b (id INTEGER PRIMARY KEY, body TEXT NOT NULL)",
    ),
}
_RETRY = (
    "UPDATE o SET attempts = attempts + 1, last_status = 500, last_error = 'HTTP 500', "
    "not_before = ? WHERE id = ?"
)
# Each attempt's outcome, in order. SQLite stores 0 and 1 in no bytes and 2 in one, so
# the second failure grows the record; the third changes no column's size.
STEPS = {
    "1st failure": _RETRY,
    "2nd failure": _RETRY,
    "3rd failure": _RETRY,
    "delivered": (
        "UPDATE o SET status = 'delivered', attempts = attempts + 1, last_status = 200, "
        "last_error = NULL, finished_at = ? WHERE id = ?"
    ),
}


def measure(layout: str, rows: int, body_chars: int, folder: Path) -> dict[str, float]:
    """WAL bytes per update, for each step."""
    path = folder / f"{layout.replace(' ', '-')}.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    body = "x" * body_chars
    conn.execute("BEGIN")
    for ddl in LAYOUTS[layout]:
        conn.execute(ddl)
    small = "'pending', 0, 0, NULL, NULL, NULL"
    if layout == "in row":
        conn.executemany(
            f"INSERT INTO o VALUES (?, ?, {small})",  # noqa: S608 - constants
            [(i, body) for i in range(1, rows + 1)],
        )
    else:
        conn.executemany(
            f"INSERT INTO o VALUES (?, {small})",  # noqa: S608 - constants
            [(i,) for i in range(1, rows + 1)],
        )
        conn.executemany("INSERT INTO b VALUES (?, ?)", [(i, body) for i in range(1, rows + 1)])
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    wal = Path(str(path) + "-wal")
    out: dict[str, float] = {}
    for step, sql in STEPS.items():
        before = wal.stat().st_size if wal.exists() else 0
        for i in range(1, rows + 1):
            conn.execute("BEGIN")
            conn.execute(sql, (time.time() + 60, i))
            conn.execute("COMMIT")
        out[step] = (wal.stat().st_size - before) / rows
    conn.close()
    return out


def main(rows: int = 200, body_chars: int = 100_000) -> None:
    print(f"SQLite {sqlite3.sqlite_version}, {rows} rows, body {body_chars} chars")
    print("KiB of WAL per update: " + ", ".join(STEPS))
    with tempfile.TemporaryDirectory() as folder:
        for layout in LAYOUTS:
            per = measure(layout, rows, body_chars, Path(folder))
            figures = ", ".join(f"{v / 1024:.1f}" for v in per.values())
            print(f"  body {layout:6}  {figures}")
