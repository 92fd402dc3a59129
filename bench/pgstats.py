"""PostgreSQL's own work during a phase: CPU of its processes, and its statistics counters.

With ``--backend postgres`` the database runs on the bench's machine, so its CPU would
otherwise land in "other CPU" together with the neighbours'. Its processes are read
from ``pg_stat_activity`` (which names each one's database and kind) and their CPU
from /proc, as for the bench's own processes:

- *backends*: the processes serving the bench's scratch database (the flowhook
  processes' connections, its autovacuum workers), this meter's own left out;
- *shared*: the WAL writer, checkpointer and background writer, which every database
  on the server shares (the neighbours' tests too): reported apart, not charged.

A backend that starts and ends within the phase is not seen (a pooled connection
opened and closed again); flowhook's connections are long-lived.

The counters (``pg_stat_database``, ``pg_stat_user_tables``, ``pg_stat_user_indexes``)
say what the database did per delivered output: transactions, rows read, written, index
scans. PostgreSQL
flushes a backend's counters about once a second, so they are read after the drain.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from bench import procs

# A backend flushes its counters to the statistics views at most once a second.
FLUSH_SECONDS = 1.2
SHARED_KINDS = ("walwriter", "checkpointer", "background writer")
_DATABASE_COUNTERS = (
    "xact_commit",
    "xact_rollback",
    "tup_returned",
    "tup_fetched",
    "tup_inserted",
    "tup_updated",
    "tup_deleted",
    "blks_hit",
    "blks_read",
)
_TABLE_COUNTERS = ("seq_scan", "idx_scan", "n_tup_ins", "n_tup_upd", "n_tup_hot_upd", "n_tup_del")


@dataclass
class _Reading:
    cpu: dict[int, tuple[str, float]]  # pid -> (backends | shared, CPU seconds so far)
    database: dict[str, int]
    tables: dict[str, dict[str, int]]


class DatabaseMeter:
    """Reads PostgreSQL's processes and counters for one database (``url``)."""

    def __init__(self, url: str) -> None:
        import psycopg

        self._name = url.rsplit("/", 1)[1]
        self._conn = psycopg.connect(url, autocommit=True)
        self._own_pid = int(self._conn.execute("SELECT pg_backend_pid()").fetchone()[0])  # type: ignore[index]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.close()

    def read(self) -> _Reading:
        self._conn.execute("SELECT pg_stat_clear_snapshot()")
        cpu: dict[int, tuple[str, float]] = {}
        rows = self._conn.execute("SELECT pid, datname, backend_type FROM pg_stat_activity")
        for pid, datname, kind in rows.fetchall():
            if pid == self._own_pid:
                continue
            if datname == self._name:
                group = "backends"
            elif kind in SHARED_KINDS:
                group = "shared"
            else:
                continue
            with contextlib.suppress(OSError):  # ended meanwhile
                cpu[int(pid)] = (group, procs.cpu_seconds(int(pid)))
        cols = ", ".join(_DATABASE_COUNTERS)
        row = self._conn.execute(
            f"SELECT {cols} FROM pg_stat_database WHERE datname = %s",  # noqa: S608 - constants
            (self._name,),
        ).fetchone()
        database = dict(zip(_DATABASE_COUNTERS, (int(v or 0) for v in row or ()), strict=False))
        cols = ", ".join(_TABLE_COUNTERS)
        tables = {
            str(r[0]): dict(zip(_TABLE_COUNTERS, (int(v or 0) for v in r[1:]), strict=True))
            for r in self._conn.execute(
                f"SELECT relname, {cols} FROM pg_stat_user_tables"  # noqa: S608 - constants
            ).fetchall()
        }
        for name, scans, read in self._conn.execute(
            "SELECT indexrelname, idx_scan, idx_tup_read FROM pg_stat_user_indexes"
        ).fetchall():
            tables[f"index {name}"] = {"idx_scan": int(scans or 0), "idx_tup_read": int(read or 0)}
        return _Reading(cpu, database, tables)


def phase_figures(before: _Reading, after: _Reading, outputs: int) -> dict[str, Any]:
    """What the database did between two readings, in total and per delivered output."""
    cpu = {"backends": 0.0, "shared": 0.0}
    for pid, (group, seconds) in after.cpu.items():
        start = before.cpu.get(pid)
        cpu[group] += seconds - (start[1] if start is not None else 0.0)
    per = max(1, outputs)
    database = {k: v - before.database.get(k, 0) for k, v in after.database.items()}
    tables: dict[str, dict[str, float]] = {}
    for name, counters in after.tables.items():
        old = before.tables.get(name, {})
        moved = {k: v - old.get(k, 0) for k, v in counters.items() if v - old.get(k, 0)}
        if moved:
            tables[name] = {k: round(v / per, 2) for k, v in moved.items()}
    return {
        "cpu_s": {k: round(v, 2) for k, v in cpu.items()},
        "cpu_ms_per_delivery": round(1000 * cpu["backends"] / per, 3),
        "shared_cpu_ms_per_delivery": round(1000 * cpu["shared"] / per, 3),
        "per_delivery": {k: round(v / per, 2) for k, v in database.items()},
        "tables_per_delivery": tables,
    }


def meter(url: str | None) -> DatabaseMeter | None:
    """A meter for the scratch database at ``url``; None without one (SQLite)."""
    return None if url is None else DatabaseMeter(url)
