"""Receivers down for long: ``python -m bench failing [--minutes M] ...``.

One ``flowhook serve`` (SQLite or PostgreSQL), one healthy endpoint and ``--bad``
endpoints whose receivers are down: half refuse connections (nobody listens on the port),
half accept and never answer. Messages of about ``--kib`` KiB each.

1. **baseline**: only the healthy endpoint gets load (``--rate`` msg/s, open loop) for
   ``--baseline`` seconds: its delivery latency (202 to arrival at the receiver).
2. **failing**: the same healthy load, plus ``--bad-rate`` msg/s spread over the bad
   endpoints, for ``--minutes``. The server's RSS is sampled every ``--sample`` seconds;
   the healthy endpoint's latency is measured as in phase 1.
3. **recovery**: the bad receivers come back (the refused ports start listening, the
   hanging ones answer 200). The bench waits until every accepted message's output
   arrived, then checks: each output delivered (a webhook-id may repeat: at least once,
   duplicates counted), and every session's outputs arrived in the order its messages
   were accepted (first arrival of each webhook-id).

Loopback only; every loop is bounded in time. The result is written to
``bench/results/failing-<stamp>.json`` and summarised on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import random
import socket
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from bench import procs
from bench.runner import ADMIN_TOKEN, ALLOW_CIDRS, RESULTS, postgres_database
from bench.stats import summary_ms

# Long enough that nothing is given up within the run, short enough that the recovery
# does not wait hours for the next retry.
RETRY_SCHEDULE = [1, 2, 5, 10, 20, 30] + [30] * 60


@dataclass
class Options:
    minutes: float = 10.0
    baseline_s: float = 60.0
    rate: float = 10.0
    bad: int = 10
    bad_rate: float = 10.0
    kib: int = 100
    sessions: int = 50
    sample_s: float = 5.0
    recovery_timeout_s: float = 600.0
    backend: str = "sqlite"
    pg_url: str = "postgresql://postgres@127.0.0.1:5432/test"
    flowhook_src: Path | None = None  # another checkout's src/ (to compare versions)


@dataclass
class Receiver:
    """A webhook receiver in this process: ``ok``, ``hang`` (never answers until
    released) or ``down`` (nobody listens until ``start``)."""

    mode: str
    port: int = field(default_factory=procs.free_port)
    arrivals: list[tuple[float, str, str]] = field(default_factory=list)  # (t, id, text)
    released: asyncio.Event = field(default_factory=asyncio.Event)
    runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> None:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_post("/hook", self._handle)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.mode == "hang" and not self.released.is_set():
            await self.released.wait()
            if request.transport is None or request.transport.is_closing():
                # flowhook gave up on this attempt long ago (its timeout): not a delivery
                return web.Response(status=200)
        text = orjson.loads(body)["AIOutput"]["text"]
        self.arrivals.append((time.time(), request.headers["webhook-id"], text[:80]))
        return web.Response(status=200)


@dataclass
class Sent:
    """Accepted messages: (endpoint, session) -> message numbers in acceptance order."""

    at: dict[str, float] = field(default_factory=dict)  # tag -> time of the 202
    posted: dict[str, float] = field(default_factory=dict)  # tag -> time the POST began
    order: dict[tuple[int, int], list[str]] = field(default_factory=dict)
    refused: int = 0


def tag_of(text: str) -> str:
    """The message tag at the start of an echoed output ("You said: <tag>|...")."""
    return text.removeprefix("You said: ").split("|", 1)[0]


async def offer(
    http: aiohttp.ClientSession,
    urls: list[str],
    index: int,
    rate: float,
    seconds: float,
    opts: Options,
    sent: Sent,
    phase: str,
) -> None:
    """Open loop: ``rate`` messages a second, round-robin over endpoints and sessions."""
    if rate <= 0:
        return
    pad = "x" * (opts.kib * 1024)
    tasks: set[asyncio.Task[None]] = set()
    start = time.monotonic()
    for n in itertools.count():
        due = start + n / rate
        if due - start >= seconds:
            break
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        ep = n % len(urls)
        session = (n // len(urls)) % opts.sessions
        tag = f"{phase}{index + ep}-{session}-{n}"
        body = {"userId": "u", "sessionId": f"s{session}", "text": f"{tag}|{pad}"}
        task = asyncio.create_task(post(http, urls[ep], body, tag, (index + ep, session), sent))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks, timeout=60)


async def post(
    http: aiohttp.ClientSession,
    url: str,
    body: dict[str, Any],
    tag: str,
    key: tuple[int, int],
    sent: Sent,
) -> None:
    sent.posted[tag] = time.time()
    try:
        async with http.post(url, json=body) as resp:
            if resp.status != 202:
                sent.refused += 1
                return
    except (aiohttp.ClientError, TimeoutError):
        sent.refused += 1
        return
    sent.at[tag] = time.time()
    sent.order.setdefault(key, []).append(tag)


def latencies(receiver: Receiver, sent: Sent, since: float, until: float) -> list[float]:
    out = []
    seen: set[str] = set()
    for at, webhook_id, text in receiver.arrivals:
        tag = tag_of(text)
        accepted = sent.at.get(tag)
        if webhook_id in seen or accepted is None or not since <= accepted < until:
            continue
        seen.add(webhook_id)
        out.append(at - accepted)
    return out


def cpu_ms_per_message(samples: list[dict[str, Any]], start: float, end: float) -> float | None:
    """Server CPU per accepted message between two times (seconds since the start), from
    the samples nearest inside them."""
    inside = [s for s in samples if start <= s["t_s"] <= end and "accepted" in s]
    if len(inside) < 2:
        return None
    first, last = inside[0], inside[-1]
    messages = float(last["accepted"]) - float(first["accepted"])
    if messages <= 0:
        return None
    cpu_s = float(last["cpu_s"]) - float(first["cpu_s"])
    return round(1000 * cpu_s / messages, 2)


def check_delivery(receivers: list[Receiver], sent: Sent) -> dict[str, Any]:
    """Every accepted message's output arrived; per session in acceptance order."""
    first: dict[str, float] = {}  # tag -> first arrival
    duplicates = 0
    by_mode: dict[str, int] = {}
    for r in receivers:
        seen: set[str] = set()
        for at, webhook_id, text in r.arrivals:
            if webhook_id in seen:
                duplicates += 1
                by_mode[r.mode] = by_mode.get(r.mode, 0) + 1
                continue
            seen.add(webhook_id)
            first.setdefault(tag_of(text), at)
    missing = [t for t in sent.at if t not in first]
    out_of_order = 0
    examples: list[dict[str, Any]] = []  # the first few, to tell a race from a reorder
    for tags in sent.order.values():
        arrived = [t for t in tags if t in first]
        for a, b in itertools.pairwise(arrived):
            if first[b] < first[a]:
                out_of_order += 1
                if len(examples) < 5:
                    examples.append(
                        {
                            tag: {
                                "posted": round(sent.posted.get(tag, 0.0), 3),
                                "accepted": round(sent.at[tag], 3),
                                "arrived": round(first[tag], 3),
                            }
                            for tag in (a, b)
                        }
                    )
    return {
        "accepted": len(sent.at),
        "delivered": len(sent.at) - len(missing),
        "missing": len(missing),
        "duplicate_posts": duplicates,
        "duplicates_by_receiver": by_mode,
        "sessions_checked": len(sent.order),
        "out_of_order_pairs": out_of_order,
        "out_of_order_examples": examples,
    }


@contextlib.contextmanager
def flowhook(opts: Options, workdir: Path) -> Iterator[tuple[Any, int]]:
    with contextlib.ExitStack() as stack:
        db_args: list[str] = []
        if opts.backend == "postgres":
            db_args = ["--database-url", stack.enter_context(postgres_database(opts.pg_url))]
        port = procs.free_port()
        env = {
            "FLOWHOOK_ADMIN_TOKEN": ADMIN_TOKEN,
            "FLOWHOOK_LOG_LEVEL": "error",
            "FLOWHOOK_WEBHOOK_ALLOW_CIDRS": ALLOW_CIDRS,
            "FLOWHOOK_DELIVERY_RETRY_SCHEDULE": orjson.dumps(RETRY_SCHEDULE).decode(),
            "FLOWHOOK_MAX_BODY_BYTES": str(opts.kib * 1024 + 65536),
        }
        flows_dir = procs.REPO / "flows"
        if opts.flowhook_src is not None:
            env["PYTHONPATH"] = str(opts.flowhook_src)
            flows_dir = opts.flowhook_src.parent / "flows"
        log = stack.enter_context((workdir / "flowhook.log").open("a"))
        proc = procs.spawn(
            [
                sys.executable,
                "-m",
                "flowhook",
                "--data-dir",
                str(workdir / "data"),
                "--flows-dir",
                str(flows_dir),
                *db_args,
                "serve",
                "--port",
                str(port),
            ],
            env=env,
            log=log,
        )
        try:
            procs.wait_http(f"http://127.0.0.1:{port}/healthz", proc, timeout=60)
            yield proc, port
        finally:
            procs.stop(proc)


def settings_from_env() -> dict[str, str]:
    """The FLOWHOOK_* settings this run's server inherited, secrets left out."""
    secret = ("TOKEN", "KEY", "SECRET", "PASSWORD")
    return {
        k: v
        for k, v in os.environ.items()
        if k.startswith("FLOWHOOK_") and not any(word in k for word in secret)
    }


def create_endpoint(port: int, name: str, url: str) -> str:
    status, body = procs.http_json(
        "POST",
        f"http://127.0.0.1:{port}/api/v1/endpoints",
        {"name": name, "flow": "echo", "webhookUrl": url},
        {"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    if status != 201:
        raise RuntimeError(f"endpoint not created: {status} {body}")
    return str(body["endpointUrl"])


def server_gauges(port: int) -> dict[str, float]:
    """Outputs in memory, and messages accepted but not yet run (the turn backlog)."""
    wanted = {
        "flowhook_delivery_in_memory": "in_memory",
        "flowhook_delivery_body_bytes_in_memory": "body_bytes",
        "flowhook_messages_accepted_total": "accepted",
        "flowhook_turns_total": "turns",
    }
    out: dict[str, float] = {}
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            name, _, value = line.partition(" ")
            if name in wanted:
                out[wanted[name]] = float(value)
    out["turn_backlog"] = out.get("accepted", 0.0) - out.get("turns", 0.0)
    return out


def quiet_port() -> int:
    """A free port below the ephemeral range: a port nobody listens on for minutes must
    not be taken meanwhile as the local end of some outgoing connection (it was, once,
    and the receiver could not come back on it)."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    while True:
        port = random.randrange(max(1024, low - 12000), low)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


async def sample_rss(
    pid: int, port: int, every: float, start: float, out: list[dict[str, Any]]
) -> None:
    while True:
        mem = procs.memory_kib(pid)
        try:
            gauges = await asyncio.to_thread(server_gauges, port)
        except OSError:
            gauges = {}
        cpu = procs.cpu_seconds(pid)
        out.append({"t_s": round(time.time() - start, 1), "cpu_s": cpu, **mem, **gauges})
        await asyncio.sleep(every)


async def run(opts: Options) -> dict[str, Any]:
    healthy = Receiver("ok")
    bad = [
        Receiver("down", port=quiet_port()) if i % 2 == 0 else Receiver("hang")
        for i in range(opts.bad)
    ]
    await healthy.start()
    for r in bad:
        if r.mode == "hang":
            await r.start()
    sent = Sent()
    with (
        tempfile.TemporaryDirectory(prefix="flowhook-failing-") as tmp,
        flowhook(opts, Path(tmp)) as (proc, port),
    ):
        ok_url = create_endpoint(port, "healthy", healthy.url)
        bad_urls = [create_endpoint(port, f"bad{i}", r.url) for i, r in enumerate(bad)]
        rss: list[dict[str, Any]] = []
        t0 = time.time()
        sampler = asyncio.create_task(sample_rss(proc.pid, port, opts.sample_s, t0, rss))
        connector = aiohttp.TCPConnector(limit=256)
        async with aiohttp.ClientSession(connector=connector) as http:
            base_start = time.time()
            await offer(http, [ok_url], 0, opts.rate, opts.baseline_s, opts, sent, "b")
            await asyncio.sleep(2)
            base_end = fail_start = time.time()
            await asyncio.gather(
                offer(http, [ok_url], 0, opts.rate, opts.minutes * 60, opts, sent, "f"),
                offer(http, bad_urls, 1, opts.bad_rate, opts.minutes * 60, opts, sent, "f"),
            )
            await asyncio.sleep(2)
            fail_end = time.time()
            for r in bad:
                r.released.set()
                if r.mode == "down":
                    await r.start()
            expected = len(sent.at)
            receivers = [healthy, *bad]
            deadline = time.monotonic() + opts.recovery_timeout_s
            while time.monotonic() < deadline:
                got = {tag_of(t) for r in receivers for _a, _w, t in r.arrivals}
                if len(got & sent.at.keys()) >= expected:
                    break
                await asyncio.sleep(1)
            recovered_s = round(time.time() - fail_end, 1)
            await asyncio.sleep(3)  # late duplicates, if any, show up
        sampler.cancel()
        failing_rss = [s for s in rss if fail_start - t0 <= s["t_s"] <= fail_end - t0]
        per_minute = []
        for m in range(int(opts.minutes) + 1):
            a = fail_start + 60 * m
            b = min(a + 60, fail_end)
            if b > a:
                lat = latencies(healthy, sent, a, b)
                if lat:
                    per_minute.append({"minute": m + 1, "n": len(lat), **summary_ms(lat)})
        result = {
            "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(opts).items()},
            # Server settings given through the environment (the server inherits it).
            "settings_from_env": settings_from_env(),
            "retry_schedule": RETRY_SCHEDULE[:8],
            "baseline": summary_ms(latencies(healthy, sent, base_start, base_end)),
            "failing": summary_ms(latencies(healthy, sent, fail_start, fail_end)),
            "failing_per_minute": per_minute,
            "rss_mib": {
                "before_load": round(rss[0]["rss_kib"] / 1024, 1),
                "failing_min": round(min(s["rss_kib"] for s in failing_rss) / 1024, 1),
                "failing_max": round(max(s["rss_kib"] for s in failing_rss) / 1024, 1),
                "failing_first_minute_max": round(
                    max(s["rss_kib"] for s in failing_rss if s["t_s"] <= fail_start - t0 + 60)
                    / 1024,
                    1,
                ),
                "failing_last_minute_max": round(
                    max(s["rss_kib"] for s in failing_rss if s["t_s"] >= fail_end - t0 - 60) / 1024,
                    1,
                ),
                "peak": round(max(s.get("peak_rss_kib", 0) for s in rss) / 1024, 1),
                "after_recovery": round(rss[-1]["rss_kib"] / 1024, 1),
            },
            "server_cpu_ms_per_message": {
                "baseline": cpu_ms_per_message(rss, base_start - t0, base_end - t0),
                "failing": cpu_ms_per_message(rss, fail_start - t0, fail_end - t0),
            },
            "in_memory_max": max((s.get("in_memory") or 0) for s in rss),
            "body_mib_in_memory_max": round(
                max((s.get("body_bytes") or 0) for s in rss) / 1024 / 1024, 1
            ),
            "series": [
                {
                    "t_s": s["t_s"],
                    "rss_mib": round(s["rss_kib"] / 1024, 1),
                    "in_memory": s.get("in_memory"),
                    "body_mib": round((s.get("body_bytes") or 0) / 1024 / 1024, 1),
                    "turn_backlog": s.get("turn_backlog"),
                }
                for s in rss
            ],
            "refused_messages": sent.refused,
            "recovery_s": recovered_s,
            "delivery": check_delivery(receivers, sent),
        }
    await healthy.stop()
    for r in bad:
        await r.stop()
    return result


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench failing")
    p.add_argument("--minutes", type=float, default=10.0, help="length of the failing phase")
    p.add_argument("--baseline", type=float, default=60.0, help="seconds, healthy load only")
    p.add_argument("--rate", type=float, default=10.0, help="healthy endpoint msg/s")
    p.add_argument("--bad", type=int, default=10, help="endpoints with dead receivers")
    p.add_argument("--bad-rate", type=float, default=10.0, help="msg/s over the bad ones")
    p.add_argument("--kib", type=int, default=100, help="message text size")
    p.add_argument("--sessions", type=int, default=50, help="sessions per endpoint")
    p.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--flowhook-src", type=Path, default=None, help="bench this src/ dir")
    args = p.parse_args(argv)
    opts = Options(
        minutes=args.minutes,
        baseline_s=args.baseline,
        rate=args.rate,
        bad=args.bad,
        bad_rate=args.bad_rate,
        kib=args.kib,
        sessions=args.sessions,
        backend=args.backend,
        flowhook_src=None if args.flowhook_src is None else args.flowhook_src.resolve(),
    )
    result = asyncio.run(run(opts))
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = RESULTS / f"failing-{stamp}-{uuid.uuid4().hex[:4]}.json"
    path.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    brief = {k: v for k, v in result.items() if k != "series"}
    print(orjson.dumps(brief, option=orjson.OPT_INDENT_2).decode())
    print(f"written: {path}")


if __name__ == "__main__":
    main()
