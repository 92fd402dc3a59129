"""``python -m bench code-call``: what one code call costs in a worker process.

Calls the code-echo bench flow's function ``--calls`` times directly (in this process,
as code nodes ran before they were isolated) and through ``CodeWorkers.run_isolated``
(one at a time, then ``--concurrency`` at once), and prints the time per call and the
CPU it took in this process and in the workers.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import resource
import time
from pathlib import Path
from typing import Any

from flowhook.isolation import CodeWorkers, IsolationLimits
from flowhook.trusted_code import resolve_code_ref

FLOWS = Path(__file__).resolve().parent / "flows"
ARGS: list[Any] = [
    {"text": "Hello, I need help with my order", "data": {"exampleKey": "exampleValue"}},
    {},
    {},
]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _direct(calls: int) -> float:
    spec = importlib.util.spec_from_file_location("code_echo", FLOWS / "code_echo.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    started = time.perf_counter()
    for _ in range(calls):
        module.reply(*ARGS)
    return (time.perf_counter() - started) / calls


async def _isolated(calls: int, concurrency: int, workers: int) -> dict[str, float]:
    ref = resolve_code_ref("code_echo.py:reply", FLOWS)
    pool = CodeWorkers(IsolationLimits(workers=workers))
    try:
        await asyncio.gather(*(pool.run_isolated(ref, ARGS) for _ in range(workers)))  # warm
        own = time.process_time()
        started = time.perf_counter()
        remaining = calls

        async def lane() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await pool.run_isolated(ref, ARGS)

        await asyncio.gather(*(lane() for _ in range(concurrency)))
        wall = time.perf_counter() - started if calls else 0.0
        server_cpu = time.process_time() - own
    finally:
        pool.close()  # workers are reaped here, so their CPU shows up in RUSAGE_CHILDREN
    per = max(calls, 1)
    return {"wall_us": wall / per * 1e6, "server_cpu_us": server_cpu / per * 1e6}


def _worker_cpu_us(calls: int, concurrency: int, workers: int) -> tuple[dict[str, float], float]:
    """The run's figures and the workers' CPU per call, without their start-up (measured
    by a run of no calls, subtracted)."""
    before = _children_cpu()
    asyncio.run(_isolated(0, concurrency, workers))
    startup = _children_cpu() - before
    before = _children_cpu()
    figures = asyncio.run(_isolated(calls, concurrency, workers))
    return figures, max(0.0, _children_cpu() - before - startup) / calls * 1e6


def main(calls: int, concurrency: int, workers: int) -> None:
    direct = _direct(calls)
    serial, serial_workers = _worker_cpu_us(calls, 1, workers)
    parallel, parallel_workers = _worker_cpu_us(calls, concurrency, workers)
    print(f"code call, {calls} calls, {workers} workers, pid {os.getpid()}")
    print(f"  in process (not isolated)     {direct * 1e6:8.1f} µs per call")
    print(
        f"  worker, one at a time         {serial['wall_us']:8.1f} µs per call  "
        f"server CPU {serial['server_cpu_us']:.1f} µs  worker CPU {serial_workers:.1f} µs"
    )
    print(
        f"  worker, {concurrency} at once{' ' * (13 - len(str(concurrency)))}"
        f"{parallel['wall_us']:8.1f} µs per call  "
        f"server CPU {parallel['server_cpu_us']:.1f} µs  worker CPU {parallel_workers:.1f} µs"
    )
