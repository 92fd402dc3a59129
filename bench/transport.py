"""``python -m bench transport``: CPU per webhook POST of each delivery transport.

The delivery transports (``flowhook.delivery``) POST to the bench receiver, a process of
its own, from one event loop on uvloop like the server: ``posts`` POSTs after a warm-up,
``concurrency`` at a time, each with the headers an attempt carries (``webhook-id``,
``webhook-timestamp``) and an ``echo``-sized body. The figure is the CPU of this
process (``time.process_time``: every thread, so a transport that hands work to
threads is charged for it) divided by the POSTs. The transports take turns for
``rounds`` rounds so that a change in the machine's load hits both alike; each round's
figures are printed, and the median per transport.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.runner import Options, Receiver, base_doc, write_doc
from flowhook.delivery.lean_transport import LeanTransport
from flowhook.delivery.transport import AiohttpTransport
from flowhook.delivery.types import Transport, WebhookTarget


def _factories() -> dict[str, Callable[[], Transport]]:
    out: dict[str, Callable[[], Transport]] = {
        "aiohttp": lambda: AiohttpTransport(connect_timeout=5.0, total_timeout=15.0),
        "lean": lambda: LeanTransport(connect_timeout=5.0, total_timeout=15.0),
    }
    return out


@dataclass
class TransportOptions:
    posts: int = 20_000
    concurrency: int = 64
    rounds: int = 3
    warmup: int = 2_000
    transports: tuple[str, ...] = ("aiohttp", "lean")


BODY = orjson.dumps(
    {
        "userId": "user-0001",
        "sessionId": "session-0001",
        "AIOutput": {
            "text": "You said: Hello, I need help with my order",
            "data": {},
            "traceId": "endpoint-httpIncomingMessage-00000000-0000-0000-0000-000000000000",
            "disableSensitiveLogging": False,
            "source": "bot",
        },
    }
)


async def _drive(transport: Transport, target: WebhookTarget, posts: int, concurrency: int) -> int:
    """``posts`` POSTs, ``concurrency`` at a time; the number that got a 2xx."""
    ok = 0
    remaining = posts

    async def worker() -> None:
        nonlocal ok, remaining
        while remaining > 0:
            remaining -= 1
            headers = {
                "webhook-id": f"msg_{remaining:020d}",
                "webhook-timestamp": str(int(time.time())),
            }
            result = await transport.post(target, BODY, headers)
            ok += result.ok

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ok


async def _round(
    name: str, make: Callable[[], Transport], target: WebhookTarget, opts: TransportOptions
) -> dict[str, Any]:
    transport = make()
    try:
        await _drive(transport, target, opts.warmup, opts.concurrency)
        wall, cpu = time.perf_counter(), time.process_time()
        ok = await _drive(transport, target, opts.posts, opts.concurrency)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        await transport.close()
    return {
        "transport": name,
        "posts": opts.posts,
        "ok": ok,
        "cpu_us_per_post": round(1e6 * cpu / opts.posts, 1),
        "posts_per_s": round(opts.posts / wall),
    }


async def measure(url: str, opts: TransportOptions) -> list[dict[str, Any]]:
    factories = _factories()
    unknown = [n for n in opts.transports if n not in factories]
    if unknown:
        raise SystemExit(f"unknown transport(s): {', '.join(unknown)} (have {sorted(factories)})")
    target = WebhookTarget(url)
    rounds = []
    for i in range(opts.rounds):
        # Alternate who goes first, so neither always runs on a warmer machine.
        order = opts.transports if i % 2 == 0 else tuple(reversed(opts.transports))
        for name in order:
            result = await _round(name, factories[name], target, opts)
            result["round"] = i + 1
            rounds.append(result)
            print(
                f"  round {i + 1} {name:8s} {result['cpu_us_per_post']:7.1f} µs CPU per POST, "
                f"{result['posts_per_s']:,} POSTs/s, {result['ok']} ok",
                flush=True,
            )
    return rounds


def main(opts: Options, topts: TransportOptions) -> dict[str, Any]:
    import uvloop

    doc = base_doc(opts)
    doc["transport"] = {"options": {**topts.__dict__, "transports": list(topts.transports)}}
    with tempfile.TemporaryDirectory(prefix="flowhook-transport-") as tmp:
        receiver = Receiver(Path(tmp))
        try:
            rounds = uvloop.run(measure(receiver.url("/hook"), topts))
        finally:
            receiver.close()
    medians = {
        name: statistics.median(r["cpu_us_per_post"] for r in rounds if r["transport"] == name)
        for name in topts.transports
    }
    doc["transport"]["rounds"] = rounds
    doc["transport"]["median_cpu_us_per_post"] = medians
    out = write_doc(doc, "-transport")
    print(
        f"CPU per POST ({topts.posts} POSTs, {topts.concurrency} concurrent, median of "
        f"{topts.rounds} rounds): "
        + ", ".join(f"{name} {us:.1f} µs" for name, us in medians.items())
    )
    print(f"results: {out.name}")
    return doc
