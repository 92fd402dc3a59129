"""A small pool of code worker processes with a hard timeout and a memory bound.

Why processes: a flow author's function may loop, sleep or allocate without bound.
In a thread it would hold the GIL and could not be stopped; in a worker process it
runs beside the event loop and is killed when its time is up. Workers are started
lazily (``python -m flowhook.isolation.worker``, not forked from the server, so they
inherit no event loop, threads or sockets) and reused across calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import subprocess
import sys
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from flowhook.isolation.protocol import HEADER, encode, frame_length
from flowhook.trusted_code import MODULES_SETTING, CodeRef


@dataclass(frozen=True, slots=True)
class IsolationLimits:
    """How many workers run at once, how long one call may take, how much memory."""

    workers: int = 2
    timeout: float = 5.0
    memory_mb: int = 512
    # Whether ``package.module:function`` (from sys.path) may run, not only flows-dir files.
    allow_modules: bool = False
    # How long a new worker may take to start (exec, imports) before its first call is
    # timed; generous because a loaded machine can be slow to start a Python.
    start_timeout: float = 30.0


class CodeCallFailed(Exception):
    """The function raised, its worker died, or it was not allowed to run."""


class CodeRefused(CodeCallFailed):
    """The function may not run here (a sys.path module without the setting)."""


class CodeTimeout(CodeCallFailed):
    """The function ran past its timeout; its worker was killed."""


class _Worker:
    """One worker process and the bytes read from it so far."""

    def __init__(self, memory_mb: int) -> None:
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "flowhook.isolation.worker", str(memory_mb * 1024 * 1024)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        assert self.proc.stdout is not None
        assert self.proc.stdin is not None
        self.fd = self.proc.stdout.fileno()
        os.set_blocking(self.fd, False)
        self.buffer = bytearray()
        self.ready = False

    def send(self, request: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(request)
        self.proc.stdin.flush()

    def pump(self) -> tuple[dict[str, Any] | None, bool]:
        """Read what is there: (the answer once complete, whether the pipe is still open)."""
        open_ = True
        while True:
            try:
                chunk = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                break
            if not chunk:
                open_ = False
                break
            self.buffer += chunk
        length = frame_length(self.buffer)
        if length is not None and len(self.buffer) >= HEADER.size + length:
            body = bytes(self.buffer[HEADER.size : HEADER.size + length])
            del self.buffer[: HEADER.size + length]
            answer = orjson.loads(body)
            return (answer if isinstance(answer, dict) else None), open_
        return None, open_

    def kill(self) -> None:
        _stop(self.proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    with contextlib.suppress(subprocess.TimeoutExpired):  # SIGKILL does not take 5 s
        proc.wait(timeout=5)


def _stop_all(procs: set[subprocess.Popen[bytes]]) -> None:
    for proc in list(procs):
        _stop(proc)
    procs.clear()


class CodeWorkers:
    """Runs functions named by ``CodeRef`` in worker processes, at most ``workers`` at once."""

    def __init__(self, limits: IsolationLimits | None = None) -> None:
        self.limits = limits or IsolationLimits()
        self._idle: list[_Worker] = []
        self._procs: set[subprocess.Popen[bytes]] = set()
        self._slots: asyncio.Semaphore | None = None
        self._slots_loop: asyncio.AbstractEventLoop | None = None
        # Kill the workers even when the owner forgets to close the pool.
        self._finalizer = weakref.finalize(self, _stop_all, self._procs)

    async def run_isolated(
        self, ref: CodeRef, args: Sequence[Any], *, timeout: float | None = None
    ) -> Any:
        """``ref``'s function called with ``args`` in a worker; its JSON result.

        Raises ``CodeTimeout`` past ``timeout`` (default: the pool's), ``CodeCallFailed``
        when the function raises or its worker dies. Never blocks the event loop.
        """
        request = self._request(ref, args)
        limit = self.limits.timeout if timeout is None else timeout
        slots = self._slot()
        # Waiting for a free worker is bounded too (by what one call ahead may take,
        # its worker's start included): a pool kept busy fails calls, it never hangs.
        wait = self.limits.start_timeout + limit
        try:
            await asyncio.wait_for(slots.acquire(), wait)
        except TimeoutError:
            raise CodeTimeout(
                f"code '{ref.spec}': all {self.limits.workers} code workers stayed busy "
                f"for {wait:g} s"
            ) from None
        try:
            worker = await self._ready_worker(ref)
            try:
                worker.send(request)
            except OSError:  # it died while idle (killed from outside): one fresh try
                self._discard(worker)
                worker = await self._ready_worker(ref)
                worker.send(request)
            answer = await self._await_answer(worker, limit, ref)
            return self._result(worker, answer, ref)
        finally:
            slots.release()

    def run_blocking(
        self, ref: CodeRef, args: Sequence[Any], *, timeout: float | None = None
    ) -> Any:
        """The same for synchronous callers: waits in ``select`` at most ``timeout``."""
        request = self._request(ref, args)
        limit = self.limits.timeout if timeout is None else timeout
        worker = self._ready_worker_blocking(ref)
        try:
            worker.send(request)
        except OSError:
            self._discard(worker)
            worker = self._ready_worker_blocking(ref)
            worker.send(request)
        answer = self._wait_blocking(worker, limit, ref)
        return self._result(worker, answer, ref)

    def _wait_blocking(self, worker: _Worker, limit: float, ref: CodeRef) -> dict[str, Any] | None:
        deadline = time.monotonic() + limit
        while True:
            answer, open_ = worker.pump()
            if answer is not None or not open_:
                return answer
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._discard(worker)
                raise CodeTimeout(f"code '{ref.spec}' ran past its {limit:g} s timeout")
            select.select([worker.fd], [], [], remaining)

    def _ready_worker_blocking(self, ref: CodeRef) -> _Worker:
        worker = self._take()
        if not worker.ready:
            self._check_started(worker, self._wait_blocking(worker, self.limits.start_timeout, ref))
        return worker

    async def _ready_worker(self, ref: CodeRef) -> _Worker:
        """An idle worker, or a new one once it has started (its start is not timed
        against the call)."""
        worker = self._take()
        if not worker.ready:
            self._check_started(
                worker, await self._await_answer(worker, self.limits.start_timeout, ref)
            )
        return worker

    def _check_started(self, worker: _Worker, answer: dict[str, Any] | None) -> None:
        if answer is None or not answer.get("ready"):
            self._discard(worker)
            raise CodeCallFailed(
                f"a code worker did not start (exit status {worker.proc.returncode})"
            )
        worker.ready = True

    def close(self) -> None:
        """Kill every worker (idle or busy)."""
        self._idle.clear()
        _stop_all(self._procs)

    @property
    def started(self) -> int:
        """Worker processes alive now (for tests and metrics)."""
        return sum(1 for proc in self._procs if proc.poll() is None)

    def _request(self, ref: CodeRef, args: Sequence[Any]) -> bytes:
        if ref.module is not None and not self.limits.allow_modules:
            raise CodeRefused(
                f"code '{ref.spec}' names a module from sys.path; only files in the flows "
                f"dir run as code unless {MODULES_SETTING} is set"
            )
        try:
            return encode({**ref.request(), "args": list(args)})
        except (TypeError, ValueError) as exc:
            raise CodeCallFailed(
                f"code '{ref.spec}': arguments are not JSON data ({exc})"
            ) from None

    def _slot(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots_loop is not loop:
            self._slots = asyncio.Semaphore(self.limits.workers)
            self._slots_loop = loop
        return self._slots

    def _take(self) -> _Worker:
        while self._idle:
            worker = self._idle.pop()
            if worker.proc.poll() is None:
                return worker
            self._discard(worker)
        worker = _Worker(self.limits.memory_mb)
        self._procs.add(worker.proc)
        return worker

    def _discard(self, worker: _Worker) -> None:
        worker.kill()
        self._procs.discard(worker.proc)

    async def _await_answer(
        self, worker: _Worker, limit: float, ref: CodeRef
    ) -> dict[str, Any] | None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[dict[str, Any] | None] = loop.create_future()

        def readable() -> None:
            try:
                answer, open_ = worker.pump()
            except ValueError:  # a frame that is not ours: treat as a dead worker
                answer, open_ = None, False
            if (answer is not None or not open_) and not done.done():
                done.set_result(answer)

        loop.add_reader(worker.fd, readable)
        try:
            answer = await asyncio.wait_for(done, limit)
        except TimeoutError:
            loop.remove_reader(worker.fd)
            self._discard(worker)
            raise CodeTimeout(f"code '{ref.spec}' ran past its {limit:g} s timeout") from None
        except BaseException:  # cancelled: the call is abandoned, its worker too
            loop.remove_reader(worker.fd)
            self._discard(worker)
            raise
        loop.remove_reader(worker.fd)
        return answer

    def _result(self, worker: _Worker, answer: dict[str, Any] | None, ref: CodeRef) -> Any:
        if answer is None:
            self._discard(worker)
            code = worker.proc.returncode
            raise CodeCallFailed(
                f"code '{ref.spec}' stopped its worker process (exit status {code}; "
                f"memory limit {self.limits.memory_mb} MB)"
            )
        if answer.get("fatal"):
            self._discard(worker)
        else:
            self._idle.append(worker)
        if "error" in answer:
            raise CodeCallFailed(str(answer["error"]))
        return answer.get("ok")
