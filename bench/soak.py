"""The soak: fixed open-loop load for minutes, server memory sampled (``python -m bench soak``).

A fresh flowhook (one endpoint, ``flow``) is saturated for ``saturation_s``
(closed loop, as ``bench run``); then the load generator offers ``fraction`` x
that rate, open loop, for ``minutes``, round-robin over ``sessions`` sessions.
Every ``sample_s`` the orchestrator reads the server's memory from
``/proc/<pid>/status`` and the CPU of every process (so foreign load shows per
interval). Afterwards: the RSS series, its least-squares slope, whether it is
flat (growth of the fitted line over the last 2/3 of the run below
``flat_pct`` %), and per minute the ingress and end-to-end p99 and the losses.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import orjson

from bench import procs
from bench.runner import (
    Options,
    Receiver,
    Target,
    analyse,
    drain,
    flowhook_target,
    loadgen_args,
    run_phase,
)
from bench.stats import summary_ms

KILL_GRACE_S = 120.0  # the load generator ends by itself; this bounds a hung one


@dataclass
class SoakOptions:
    minutes: float = 10.0
    fraction: float = 0.5
    flow: str = "order-help"
    sessions: int = 1000
    sample_s: float = 10.0
    saturation_s: float = 10.0
    flat_pct: float = 5.0


def fit(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares line through (x, y): (slope, intercept)."""
    n = len(points)
    if n < 2:
        return 0.0, points[0][1] if points else 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return 0.0, my
    slope = sum((x - mx) * (y - my) for x, y in points) / sxx
    return slope, my - slope * mx


def rss_verdict(samples: list[dict[str, Any]], flat_pct: float) -> dict[str, Any]:
    """Slope of RSS (MiB/min) over the whole run and over its last 2/3; flat or not."""
    if len(samples) < 3:
        return {"flat": None, "note": "too few samples"}
    span = samples[-1]["t_s"]
    whole = [(s["t_s"] / 60.0, s["rss_kib"] / 1024.0) for s in samples]
    tail = [(s["t_s"] / 60.0, s["rss_kib"] / 1024.0) for s in samples if s["t_s"] >= span / 3]
    slope_all, _ = fit(whole)
    slope_tail, icpt = fit(tail)
    x0, x1 = tail[0][0], tail[-1][0]
    y0, y1 = slope_tail * x0 + icpt, slope_tail * x1 + icpt
    growth = 100.0 * (y1 - y0) / y0 if y0 else 0.0
    anon = [(s["t_s"] / 60.0, s["anon_kib"] / 1024.0) for s in samples if s["t_s"] >= span / 3]
    return {
        "slope_mib_per_min": round(slope_all, 3),
        "slope_last_two_thirds_mib_per_min": round(slope_tail, 3),
        "anon_slope_last_two_thirds_mib_per_min": round(fit(anon)[0], 3),
        "growth_last_two_thirds_pct": round(growth, 2),
        "rss_first_mib": round(samples[0]["rss_kib"] / 1024.0, 1),
        "rss_at_one_third_mib": round(tail[0][1], 1),
        "rss_last_mib": round(samples[-1]["rss_kib"] / 1024.0, 1),
        "rss_max_mib": round(max(s["rss_kib"] for s in samples) / 1024.0, 1),
        "flat_threshold_pct": flat_pct,
        "flat": growth < flat_pct,
    }


def per_minute(load: dict[str, Any], deliveries: list[tuple[float, str]]) -> list[dict[str, Any]]:
    """Per minute of scheduled send time: requests, ingress and e2e percentiles, losses."""
    start = load["window"][0]
    delivered_at: dict[str, float] = {}
    for t, trace in deliveries:
        delivered_at.setdefault(trace, t)
    buckets: dict[int, list[list[Any]]] = {}
    for rec in load["records"]:
        buckets.setdefault(int((rec[0] - start) // 60), []).append(rec)
    out = []
    for minute in sorted(buckets):
        recs = buckets[minute]
        ok = [r for r in recs if 200 <= r[2] < 300]
        e2e = [delivered_at[r[3]] - r[1] for r in ok if r[3] in delivered_at]
        out.append(
            {
                "minute": minute,
                "sent": len(recs),
                "accepted": len(ok),
                "lost": (len(recs) - len(ok)) + (len(ok) - len(e2e)),
                "ingress_ms": summary_ms([r[1] - r[0] for r in ok]),
                "e2e_ms": summary_ms(e2e),
            }
        )
    return out


class Sampler:
    """CPU and memory readings of the processes of the soak, interval by interval."""

    def __init__(
        self,
        target: Target,
        receiver: Receiver,
        loadgen: subprocess.Popen[bytes],
        rate: float,
    ):
        self.pids = {
            "server": target.proc.pid,
            "receiver": receiver.proc.pid,
            "loadgen": loadgen.pid,
        }
        self.receiver = receiver
        self.rate = rate
        self.delivered0 = receiver.total()
        self.t0 = time.monotonic()
        self.last: dict[str, float] = {}
        self.last = self._cpu()

    def _cpu(self) -> dict[str, float]:
        out = {"machine": procs.machine_busy_seconds(), "wall": time.monotonic()}
        for name, pid in self.pids.items():
            try:
                out[name] = procs.cpu_seconds(pid)
            except (OSError, IndexError, ValueError):
                out[name] = self.last.get(name, 0.0)  # it ended: no CPU since
        return out

    def sample(self) -> dict[str, Any]:
        now = self._cpu()
        d = {k: now[k] - self.last[k] for k in now}
        self.last = now
        wall = d["wall"]
        other: float | None = None
        if wall >= 1.0:  # /proc/stat counts in ticks: shorter intervals say nothing
            other = round(
                max(0.0, d["machine"] - d["server"] - d["receiver"] - d["loadgen"]) / wall, 2
            )
        mem = procs.memory_kib(self.pids["server"])
        t = now["wall"] - self.t0
        delivered = self.receiver.total()
        return {
            "t_s": round(t, 1),
            **mem,
            "delivered_total": delivered,
            # offered so far - delivered so far: messages queued or in flight anywhere
            # (one output per message); a stall shows here before it shows in RSS
            "behind": max(0, round(self.rate * t) - (delivered - self.delivered0)),
            "server_cores": round(d["server"] / wall, 2) if other is not None else None,
            "other_cores": other,
        }


def soak_target(
    target: Target, receiver: Receiver, opts: Options, sopts: SoakOptions
) -> dict[str, Any]:
    mem_start = procs.memory_kib(target.proc.pid)
    sat_opts = replace(opts, duration=sopts.saturation_s, sessions=sopts.sessions)
    saturation = run_phase(target, receiver, sat_opts, "saturation", None)
    rate = max(
        1.0, sopts.fraction * min(saturation["accepted_per_s"], saturation["delivered_per_s"])
    )
    print(
        f"   saturation {saturation['accepted_per_s']}/s accepted, "
        f"{saturation['delivered_per_s']}/s delivered: soak at {rate:.1f}/s "
        f"for {sopts.minutes:g} min",
        flush=True,
    )
    receiver.collect()
    duration = sopts.minutes * 60.0
    tag = f"soak-{uuid.uuid4().hex[:6]}"
    out = target.workdir / f"{tag}.json"
    cmd = loadgen_args(
        target, sat_opts, tag, rate, out, warmup=0.0, duration=duration, sessions=sopts.sessions
    )
    cpu_srv, cpu_rcv = procs.cpu_seconds(target.proc.pid), procs.cpu_seconds(receiver.proc.pid)
    busy, wall = procs.machine_busy_seconds(), time.monotonic()
    gen = subprocess.Popen(cmd, cwd=procs.REPO)
    sampler = Sampler(target, receiver, gen, rate)
    samples = [sampler.sample()]
    deadline = time.monotonic() + duration + KILL_GRACE_S
    next_at = time.monotonic() + sopts.sample_s
    try:
        while gen.poll() is None:
            if time.monotonic() > deadline:
                raise TimeoutError("the load generator did not end in time")
            time.sleep(min(0.5, max(0.0, next_at - time.monotonic())))
            if time.monotonic() >= next_at:
                next_at += sopts.sample_s
                samples.append(sampler.sample())
                s = samples[-1]
                if int(s["t_s"]) % 60 < sopts.sample_s:
                    print(
                        f"   t={s['t_s']:.0f}s RSS {s['rss_kib'] / 1024:.1f} MiB, "
                        f"delivered {s['delivered_total']}, behind {s['behind']}, "
                        f"other CPU {s['other_cores']}",
                        flush=True,
                    )
    finally:
        if gen.poll() is None:
            gen.kill()
            gen.wait(10)
    if gen.returncode != 0:
        raise RuntimeError(f"the load generator exited with {gen.returncode}")
    drained = drain(receiver, opts.drain_timeout)
    mem_idle = procs.memory_kib(target.proc.pid)
    busy, wall = procs.machine_busy_seconds() - busy, time.monotonic() - wall
    cpu_srv = procs.cpu_seconds(target.proc.pid) - cpu_srv
    cpu_rcv = procs.cpu_seconds(receiver.proc.pid) - cpu_rcv
    load: dict[str, Any] = orjson.loads(out.read_bytes())
    out.unlink()
    deliveries = receiver.collect()
    phase = analyse("soak", rate, sat_opts, load, deliveries, drained, cpu_srv, cpu_rcv)
    other = busy - cpu_srv - cpu_rcv - load["cpu_seconds"]
    phase["cpu_s"]["other_processes"] = round(max(0.0, other), 2)
    phase["cpu_s"]["wall_s"] = round(wall, 2)
    phase["machine_busy_cores"] = round(busy / wall, 2)
    minutes = per_minute(load, deliveries)
    # the load ran from sample 0 to the last sample taken while the generator lived
    under_load = [s for s in samples if s["t_s"] <= duration + sopts.sample_s]
    return {
        "target": target.name,
        "saturation": saturation,
        "rate": round(rate, 1),
        "soak": phase,
        "rss_at_start": mem_start,
        "rss_after_drain": mem_idle,
        "samples": samples,
        "rss": rss_verdict(under_load, sopts.flat_pct),
        "per_minute": minutes,
        "data_files_bytes": _data_files(target.workdir),
    }


def _data_files(workdir: Path) -> dict[str, int]:
    return {
        str(p.relative_to(workdir)): p.stat().st_size
        for p in sorted(workdir.glob("data-*/*"))
        if p.is_file()
    }


def run_soak(
    receiver: Receiver, workdir: Path, opts: Options, sopts: SoakOptions
) -> dict[str, Any]:
    print(f"== soak: flowhook/{sopts.flow}", flush=True)
    with flowhook_target(sopts.flow, receiver, workdir, opts) as target:
        result = soak_target(target, receiver, opts, sopts)
    result["options"] = asdict(sopts)
    return result


def main(opts: Options, sopts: SoakOptions) -> dict[str, Any]:
    """``python -m bench soak``: the soak, a table and a JSON result."""
    from bench.report import print_soak
    from bench.runner import base_doc, dump_logs, write_doc

    doc = base_doc(opts)
    with tempfile.TemporaryDirectory(prefix="flowhook-bench-") as tmp:
        workdir = Path(tmp)
        receiver = Receiver(workdir)
        try:
            doc["soak"] = run_soak(receiver, workdir, opts, sopts)
        except Exception:
            dump_logs(workdir)
            raise
        finally:
            receiver.close()
    out = write_doc(doc, "-soak")
    print_soak(doc)
    print(f"\nresults: {out.relative_to(procs.REPO)}")
    return doc
