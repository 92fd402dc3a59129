"""The SQL of partition leases and worker heartbeats (PostgreSQL only).

Every time is the database's clock (``clock_timestamp()``), never a process's: hosts'
clocks may disagree, the database is the one judge of whether a lease expired.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection

LEASE_CHANNEL = "flowhook_leases"  # payload: empty; "partitions changed hands, look again"


@dataclass(frozen=True, slots=True)
class Worker:
    id: str
    role: str  # both | ingress | worker
    host: str
    pid: int
    started_at: float

    @staticmethod
    def new(worker_id: str, role: str) -> Worker:
        return Worker(worker_id, role, socket.gethostname(), os.getpid(), time.time())


@dataclass(frozen=True, slots=True)
class Tick:
    """What one heartbeat saw."""

    held: dict[int, int]  # partition -> epoch, every lease this worker holds now
    live_workers: int  # processes that run turns (role worker or both), this one included


def heartbeat(conn: Connection, worker: Worker, lease_seconds: float, keep: list[int]) -> Tick:
    """Say this worker is alive, renew the leases in ``keep`` (the partitions it owns or
    is handing back), release any other lease still naming it (left over by a failed
    release, or dropped locally while the database was away: nobody would run them),
    and count the live workers."""
    conn.exec_driver_sql(
        "INSERT INTO workers (id, role, host, pid, started_at, heartbeat_at) "
        "VALUES (%s, %s, %s, %s, %s, extract(epoch from clock_timestamp())) "
        "ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
        (worker.id, worker.role, worker.host, worker.pid, worker.started_at),
    )
    # A lease still naming this worker was not taken over, even if it expired a moment
    # ago: renewing it is safe, as nobody else can have committed under it.
    rows = conn.exec_driver_sql(
        "UPDATE partition_leases SET expires_at = extract(epoch from clock_timestamp()) + "
        "%s WHERE owner = %s AND partition = ANY(%s) "
        "RETURNING partition, epoch",
        (lease_seconds, worker.id, keep),
    ).all()
    stray = conn.exec_driver_sql(
        "UPDATE partition_leases SET owner = NULL, expires_at = 0 "
        "WHERE owner = %s AND NOT (partition = ANY(%s))",
        (worker.id, keep),
    ).rowcount
    if stray:
        conn.exec_driver_sql("SELECT pg_notify(%s, '')", (LEASE_CHANNEL,))
    live = conn.exec_driver_sql(
        "SELECT count(*) FROM workers WHERE role <> 'ingress' AND heartbeat_at > "
        "extract(epoch from clock_timestamp()) - %s",
        (lease_seconds,),
    ).scalar_one()
    # Rows of workers gone for long are only noise in the status view.
    conn.exec_driver_sql(
        "DELETE FROM workers WHERE heartbeat_at < extract(epoch from clock_timestamp()) - %s",
        (max(lease_seconds * 30, 300),),
    )
    return Tick({int(p): int(e) for p, e in rows}, max(int(live), 1))


def reap_local(conn: Connection, worker: Worker, alive: Callable[[int], bool]) -> int:
    """Expire at once the leases of earlier processes on this host that are gone (killed,
    not stopped): a restarted process need not wait out their leases. Returns how many
    leases were freed. Mistaking a live process elsewhere for a dead one here (hosts
    sharing a name) costs only duplicate deliveries: its commits are fenced."""
    rows = conn.exec_driver_sql(
        "SELECT id, pid FROM workers WHERE host = %s AND id <> %s", (worker.host, worker.id)
    ).all()
    dead = [str(r.id) for r in rows if not alive(int(r.pid))]
    if not dead:
        return 0
    freed = conn.exec_driver_sql(
        "UPDATE partition_leases SET expires_at = 0 WHERE owner = ANY(%s)", (dead,)
    ).rowcount
    conn.exec_driver_sql("DELETE FROM workers WHERE id = ANY(%s)", (dead,))
    return int(freed)


def end_stalled_sessions(conn: Connection, worker_id: str) -> int:
    """End the database sessions of workers whose leases expired (a process frozen, cut
    off, or paused, maybe in the middle of a transaction). Their open transactions roll
    back, and with them the row locks that would otherwise keep their partitions from
    being claimed (SKIP LOCKED skips them) and block the new owner's writes on the same
    outbox and message rows. Such a worker, if it comes back, reconnects and finds its
    leases gone: its commits are fenced. Returns how many sessions were ended."""
    rows = conn.exec_driver_sql(
        "SELECT pg_terminate_backend(a.pid) FROM pg_stat_activity AS a "
        "WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() "
        "AND a.application_name IN (SELECT left('flowhook:' || owner, 63) "
        "FROM partition_leases WHERE owner IS NOT NULL AND owner <> %s "
        "AND expires_at < extract(epoch from clock_timestamp()))",
        (worker_id,),
    ).all()
    return sum(1 for (ended,) in rows if ended)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


def claim(conn: Connection, worker_id: str, lease_seconds: float, limit: int) -> dict[int, int]:
    """Take up to ``limit`` partitions nobody holds (never held, handed back, or whose lease
    expired). Locked rows are skipped: two workers claiming at once get different ones."""
    rows = conn.exec_driver_sql(
        "UPDATE partition_leases SET owner = %s, epoch = epoch + 1, expires_at = "
        "extract(epoch from clock_timestamp()) + %s "
        "WHERE partition IN (SELECT partition FROM partition_leases "
        "WHERE owner IS NULL OR expires_at < extract(epoch from clock_timestamp()) ORDER "
        "BY random() LIMIT %s "
        "FOR UPDATE SKIP LOCKED) RETURNING partition, epoch",
        (worker_id, lease_seconds, limit),
    ).all()
    if rows:
        conn.exec_driver_sql("SELECT pg_notify(%s, '')", (LEASE_CHANNEL,))
    return {int(p): int(e) for p, e in rows}


def release(conn: Connection, worker_id: str, partitions: list[int]) -> None:
    """Hand partitions back (this worker let go of their work first) and tell the others."""
    conn.exec_driver_sql(
        "UPDATE partition_leases SET owner = NULL, expires_at = 0 "
        "WHERE owner = %s AND partition = ANY(%s)",
        (worker_id, partitions),
    )
    conn.exec_driver_sql("SELECT pg_notify(%s, '')", (LEASE_CHANNEL,))


def leave(conn: Connection, worker_id: str) -> None:
    """A clean stop: hand back everything and leave the worker list."""
    conn.exec_driver_sql(
        "UPDATE partition_leases SET owner = NULL, expires_at = 0 WHERE owner = %s", (worker_id,)
    )
    conn.exec_driver_sql("DELETE FROM workers WHERE id = %s", (worker_id,))
    conn.exec_driver_sql("SELECT pg_notify(%s, '')", (LEASE_CHANNEL,))


def cluster_view(conn: Connection, lease_seconds: float) -> list[dict[str, object]]:
    """Every live process with the partitions it holds (for the status API)."""
    workers = conn.exec_driver_sql(
        "SELECT id, role, host, pid, started_at, heartbeat_at FROM workers "
        "WHERE heartbeat_at > extract(epoch from clock_timestamp()) - %s ORDER BY started_at",
        (lease_seconds,),
    ).all()
    counts: dict[str, int] = dict(
        conn.exec_driver_sql(
            "SELECT owner, count(*) FROM partition_leases "
            "WHERE owner IS NOT NULL AND expires_at > extract(epoch from clock_timestamp()) "
            "GROUP BY owner"
        ).all()
    )
    return [
        {
            "id": w.id,
            "role": w.role,
            "host": w.host,
            "pid": w.pid,
            "startedAt": w.started_at,
            "heartbeatAt": w.heartbeat_at,
            "partitions": int(counts.get(w.id, 0)),
        }
        for w in workers
    ]
