"""Memory per idle session, and RSS with 100k stored sessions (``python -m bench memory``).

Both drive real sessions through flowhook's ingress (closed loop, 64 connections,
each session sent exactly one message per pass), wait until every output reached
the receiver, let the server settle, then read its memory from ``/proc``.

- **idle sessions**: a fresh server, warmed up (``warmup_messages`` on 200 other
  sessions, so lazy imports, pools, template compilation and allocator arenas are
  in place), then ``sessions`` new sessions with one message each. RSS growth / N
  is the memory an idle session costs. Measured twice: with the runner's
  session-state/profile LRU caches at their default capacity (100,000: every
  session stays cached) and with a small capacity (``small_cache``), i.e. once the
  sessions are evicted and only their database rows remain.
- **stored sessions**: ``stored`` sessions populated through the ingress (one
  message each), the server stopped, restarted on the same data dir, RSS read
  (the sessions are on disk, none in memory), then every session touched with a
  second message (each state read back from SQLite into the cache) and RSS read
  again.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import procs
from bench.runner import Options, Receiver, Target, flowhook_target, run_loadgen

WARM_SESSIONS = 200


@dataclass
class MemoryOptions:
    sessions: int = 20_000
    stored: int = 100_000
    small_cache: int = 1_000
    flow: str = "order-help"
    warmup_messages: int = 2_000
    settle_s: float = 3.0
    drain_timeout_s: float = 300.0


def wait_delivered(receiver: Receiver, expected: int, timeout: float, quiet: float = 15.0) -> float:
    """Wait until the receiver counted ``expected`` deliveries (or nothing came for ``quiet`` s)."""
    started = time.monotonic()
    last, still_since = receiver.total(), time.monotonic()
    while last < expected and time.monotonic() - started < timeout:
        time.sleep(0.25)
        now = receiver.total()
        if now != last:
            last, still_since = now, time.monotonic()
        elif time.monotonic() - still_since >= quiet:
            break
    return round(time.monotonic() - started, 2)


def settle(pid: int, seconds: float) -> dict[str, int]:
    """Memory after ``seconds`` of idleness (and until RSS stopped moving, at most 3 s more)."""
    time.sleep(seconds)
    mem = procs.memory_kib(pid)
    for _ in range(6):
        time.sleep(0.5)
        now = procs.memory_kib(pid)
        if abs(now["rss_kib"] - mem["rss_kib"]) < 64:
            return now
        mem = now
    return mem


def drive(
    target: Target,
    receiver: Receiver,
    opts: Options,
    mopts: MemoryOptions,
    tag: str,
    sessions: int,
    count: int,
) -> dict[str, Any]:
    """``count`` messages round-robin over ``sessions`` sessions, then wait for the outputs.

    Every message of the order-help flow (first or repeated) yields one output.
    """
    base = receiver.total()
    cpu_srv = procs.cpu_seconds(target.proc.pid)
    cpu_rcv = procs.cpu_seconds(receiver.proc.pid)
    busy, wall = procs.machine_busy_seconds(), time.monotonic()
    out = target.workdir / f"{tag}.json"
    load = run_loadgen(
        target, opts, tag, None, out, sessions=sessions, count=count, warmup=0.0, duration=3600.0
    )
    records = load["records"]
    send_s = max(r[1] for r in records) - load["window"][0] if records else 0.0
    accepted = sum(1 for r in records if 200 <= r[2] < 300)
    drained = wait_delivered(receiver, base + accepted, mopts.drain_timeout_s)
    delivered = receiver.total() - base
    receiver.collect()  # drop the receiver's records
    busy, wall = procs.machine_busy_seconds() - busy, time.monotonic() - wall
    cpu_srv = procs.cpu_seconds(target.proc.pid) - cpu_srv
    cpu_rcv = procs.cpu_seconds(receiver.proc.pid) - cpu_rcv
    other = max(0.0, busy - cpu_srv - cpu_rcv - load["cpu_seconds"])
    return {
        "sessions": sessions,
        "messages": count,
        "accepted": accepted,
        "rejected": len(records) - accepted,
        "errors": load["errors"],
        "delivered": delivered,
        "send_s": round(send_s, 2),
        "accepted_per_s": round(accepted / send_s, 1) if send_s > 0 else None,
        "drain_s": drained,
        "server_cpu_s": round(cpu_srv, 2),
        "other_cpu_cores": round(other / wall, 2),
    }


def _per_session(before: dict[str, int], after: dict[str, int], n: int) -> dict[str, float]:
    return {
        "rss_kib": round((after["rss_kib"] - before["rss_kib"]) / n, 2),
        "anon_kib": round((after["anon_kib"] - before["anon_kib"]) / n, 2),
    }


def idle_sessions(
    receiver: Receiver,
    workdir: Path,
    opts: Options,
    mopts: MemoryOptions,
    cache_size: int | None,
) -> dict[str, Any]:
    label = "default" if cache_size is None else str(cache_size)
    print(f"== memory: {mopts.sessions} idle sessions, state cache {label}", flush=True)
    with flowhook_target(
        mopts.flow,
        receiver,
        workdir,
        opts,
        data_dir=workdir / f"mem-idle-{label}",
        state_cache_size=cache_size,
        log_name=f"flowhook-mem-idle-{label}.log",
    ) as target:
        started = procs.memory_kib(target.proc.pid)
        warm_tag = f"warm-{uuid.uuid4().hex[:6]}"
        warm = drive(target, receiver, opts, mopts, warm_tag, WARM_SESSIONS, mopts.warmup_messages)
        before = settle(target.proc.pid, mopts.settle_s)
        tag = f"idle-{uuid.uuid4().hex[:6]}"
        run = drive(target, receiver, opts, mopts, tag, mopts.sessions, mopts.sessions)
        after = settle(target.proc.pid, mopts.settle_s)
    per_session = _per_session(before, after, mopts.sessions)
    result: dict[str, Any] = {
        "state_cache_capacity": 100_000 if cache_size is None else cache_size,
        "sessions": mopts.sessions,
        "rss_at_start": started,
        "warmup": warm,
        "rss_before": before,
        "drive": run,
        "rss_after": after,
        "per_session": per_session,
    }
    print(
        f"   {per_session['rss_kib']} KiB RSS per idle session "
        f"({before['rss_kib'] / 1024:.1f} -> {after['rss_kib'] / 1024:.1f} MiB)",
        flush=True,
    )
    return result


def stored_sessions(
    receiver: Receiver, workdir: Path, opts: Options, mopts: MemoryOptions
) -> dict[str, Any]:
    n = mopts.stored
    print(f"== memory: {n} stored sessions", flush=True)
    data_dir = workdir / "mem-stored"
    tag = f"stored-{uuid.uuid4().hex[:6]}"
    log_name = "flowhook-mem-stored.log"
    with flowhook_target(
        mopts.flow, receiver, workdir, opts, data_dir=data_dir, log_name=log_name
    ) as target:
        warm = drive(
            target, receiver, opts, mopts, f"warm-{uuid.uuid4().hex[:6]}", WARM_SESSIONS, 2000
        )
        before = settle(target.proc.pid, mopts.settle_s)
        populate = drive(target, receiver, opts, mopts, tag, n, n)
        populated = settle(target.proc.pid, mopts.settle_s)
        path = target.path
    print(
        f"   populated through the ingress in {populate['send_s']} s "
        f"({populate['accepted_per_s']}/s); RSS {populated['rss_kib'] / 1024:.1f} MiB",
        flush=True,
    )
    files = {p.name: p.stat().st_size for p in sorted(data_dir.iterdir()) if p.is_file()}
    with flowhook_target(
        mopts.flow,
        receiver,
        workdir,
        opts,
        data_dir=data_dir,
        endpoint_path=path,
        log_name=log_name,
    ) as target:
        restarted = settle(target.proc.pid, mopts.settle_s)
        warm2 = drive(
            target,
            receiver,
            opts,
            mopts,
            f"warm-{uuid.uuid4().hex[:6]}",
            WARM_SESSIONS,
            mopts.warmup_messages,
        )
        restarted_warm = settle(target.proc.pid, mopts.settle_s)
        touch = drive(target, receiver, opts, mopts, tag, n, n)
        touched = settle(target.proc.pid, mopts.settle_s)
    print(
        f"   restarted: {restarted['rss_kib'] / 1024:.1f} MiB, warmed "
        f"{restarted_warm['rss_kib'] / 1024:.1f} MiB, after touching all "
        f"{touched['rss_kib'] / 1024:.1f} MiB",
        flush=True,
    )
    return {
        "sessions": n,
        "populated_via": "ingress (one message per session, closed loop)",
        "warmup": warm,
        "rss_before_populate": before,
        "populate": populate,
        "rss_after_populate": populated,
        "data_files_bytes": files,
        "rss_after_restart": restarted,
        "warmup_after_restart": warm2,
        "rss_after_restart_warm": restarted_warm,
        "touch": touch,
        "rss_after_touch": touched,
        "per_session_populated": _per_session(before, populated, n),
        "per_session_touched": _per_session(restarted_warm, touched, n),
    }


def measure(
    receiver: Receiver, workdir: Path, opts: Options, mopts: MemoryOptions
) -> dict[str, Any]:
    """Both measurements, for ``run --memory`` and ``python -m bench memory``."""
    result: dict[str, Any] = {"options": asdict(mopts), "idle": []}
    if mopts.sessions > 0:
        result["idle"].append(idle_sessions(receiver, workdir, opts, mopts, None))
        if mopts.small_cache > 0:
            result["idle"].append(idle_sessions(receiver, workdir, opts, mopts, mopts.small_cache))
    if mopts.stored > 0:
        result["stored"] = stored_sessions(receiver, workdir, opts, mopts)
    return result


def main(opts: Options, mopts: MemoryOptions) -> dict[str, Any]:
    """``python -m bench memory``: both measurements, a table and a JSON result."""
    from bench.report import print_memory
    from bench.runner import base_doc, dump_logs, write_doc

    doc = base_doc(opts)
    with tempfile.TemporaryDirectory(prefix="flowhook-bench-") as tmp:
        workdir = Path(tmp)
        receiver = Receiver(workdir)
        try:
            doc["memory"] = measure(receiver, workdir, opts, mopts)
        except Exception:
            dump_logs(workdir)
            raise
        finally:
            receiver.close()
    out = write_doc(doc, "-memory")
    print_memory(doc)
    print(f"\nresults: {out.relative_to(procs.REPO)}")
    return doc
