"""Waiting until the dispatcher is idle: every output settled, or only retries parked."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class IdleWaiters:
    def __init__(self, is_idle: Callable[[bool], bool]) -> None:
        """``is_idle(include_scheduled)``: whether the dispatcher is idle in that sense."""
        self._is_idle = is_idle
        self._waiters: list[tuple[bool, asyncio.Future[None]]] = []

    async def wait(self, include_scheduled: bool, timeout: float | None) -> None:
        """Return once idle; ``TimeoutError`` after ``timeout`` seconds."""
        if self._is_idle(include_scheduled):
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (include_scheduled, waiter)
        self._waiters.append(entry)
        try:
            async with asyncio.timeout(timeout):
                await waiter
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    def notify(self, *, stopped: bool = False) -> None:
        """Something may have settled: release the waiters whose condition holds (all of
        them once the dispatcher stopped)."""
        if not self._waiters:
            return
        for include_scheduled, waiter in self._waiters:
            if not waiter.done() and (stopped or self._is_idle(include_scheduled)):
                waiter.set_result(None)
