"""The load generator: a raw asyncio HTTP/1.1 keep-alive client, closed or open loop.

Requests are pre-built bytes (one per session, the reference body), written on
persistent connections and answered responses are parsed just enough to get the
status and the ``traceId``. No HTTP library sits in the hot loop, so one process
drives thousands of requests per second with little CPU: on a 2-core machine
every cycle the generator spends is taken from the server under test.

- closed loop (``rate`` is None): ``connections`` workers, each sends its next
  request as soon as the previous answer arrived: saturation.
- open loop (``rate`` given): requests are *scheduled* at a fixed rate and sent on
  any idle connection (a new one is opened when none is idle, up to
  ``connections``); latency is measured from the scheduled time, so a stalled
  server is not hidden by the client waiting for it (no coordinated omission).

Output (one JSON document, written to ``out``): the measurement window and, for
every request sent in it, ``[t_start, t_done, status, traceId]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import orjson

TEXT = "Hello, I need help with my order"


def build_requests(
    host: str,
    port: int,
    path: str,
    sessions: int,
    tag: str,
    *,
    users: int = 0,
    user_tag: str | None = None,
) -> list[bytes]:
    """One request per session: the reference body with that session's ids.

    ``users`` 0 gives every session a user of its own (as real traffic does); N > 0
    spreads the sessions over N users (1: every session of one ``userId``).
    ``user_tag`` names the users (default ``tag``): load generators of one phase that
    drive different processes share it, so "one user" is one user across them.
    """
    out = []
    for i in range(sessions):
        user = i if users <= 0 else i % users
        body = orjson.dumps(
            {
                "userId": f"user-{user_tag or tag}-{user}",
                "sessionId": f"session-{tag}-{i}",
                "text": TEXT,
                "data": {"exampleKey": "exampleValue"},
            }
        )
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        out.append(head + body)
    return out


class ClientProtocol(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionError("connection lost"))

    def request(self, data: bytes) -> asyncio.Future[tuple[int, bytes]]:
        assert self.transport is not None
        fut: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        self._waiter = fut
        self.transport.write(data)
        return fut

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        head_end = buf.find(b"\r\n\r\n")
        if head_end < 0:
            return
        lower = bytes(buf[:head_end]).lower()
        pos = lower.find(b"\r\ncontent-length:")
        length = 0
        if pos >= 0:
            pos += len(b"\r\ncontent-length:")
            end = lower.find(b"\r\n", pos)
            length = int(lower[pos : end if end >= 0 else len(lower)].strip())
        total = head_end + 4 + length
        if len(buf) < total:
            return
        status = int(buf[9:12])
        body = bytes(buf[head_end + 4 : total])
        del buf[:total]
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((status, body))


def trace_of(body: bytes) -> str:
    start = body.find(b'"traceId":"')
    if start < 0:
        return ""
    start += 11
    return body[start : body.find(b'"', start)].decode()


@dataclass
class Run:
    requests: list[bytes]
    warmup: float
    duration: float
    count: int | None = None  # stop after this many requests (each session once: ``sessions``)
    start: float = 0.0
    counter: int = 0
    records: list[tuple[float, float, int, str]] = field(default_factory=list)
    errors: int = 0

    @property
    def window(self) -> tuple[float, float]:
        return self.start + self.warmup, self.start + self.warmup + self.duration

    @property
    def exhausted(self) -> bool:
        return self.count is not None and self.counter >= self.count

    def next_request(self) -> bytes:
        req = self.requests[self.counter % len(self.requests)]
        self.counter += 1
        return req

    def record(self, t0: float, t1: float, status: int, trace: str) -> None:
        if t0 >= self.start + self.warmup:
            self.records.append((t0, t1, status, trace))


async def _connect(host: str, port: int) -> ClientProtocol:
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_connection(ClientProtocol, host, port)
    return proto


async def closed_loop(run: Run, host: str, port: int, connections: int) -> None:
    protos = await asyncio.gather(*(_connect(host, port) for _ in range(connections)))
    run.start = time.time()
    end = run.start + run.warmup + run.duration

    async def worker(proto: ClientProtocol) -> None:
        while True:
            t0 = time.time()
            if t0 >= end or run.exhausted:
                return
            if proto.closed:
                proto = await _connect(host, port)
            try:
                status, body = await proto.request(run.next_request())
            except ConnectionError:
                run.errors += 1
                continue
            run.record(t0, time.time(), status, trace_of(body))

    await asyncio.gather(*(worker(p) for p in protos))
    for p in protos:
        if p.transport is not None:
            p.transport.close()


async def open_loop(run: Run, host: str, port: int, rate: float, connections: int) -> None:
    idle: deque[ClientProtocol] = deque(
        await asyncio.gather(*(_connect(host, port) for _ in range(min(16, connections))))
    )
    opened = len(idle)
    backlog: deque[tuple[float, bytes]] = deque()
    inflight: set[asyncio.Task[None]] = set()
    run.start = time.time()
    end = run.start + run.warmup + run.duration
    interval = 1.0 / rate

    async def send(proto: ClientProtocol, t_sched: float, req: bytes) -> None:
        nonlocal opened
        while True:
            if proto.closed:
                proto = await _connect(host, port)
            try:
                status, body = await proto.request(req)
            except ConnectionError:
                run.errors += 1
            else:
                run.record(t_sched, time.time(), status, trace_of(body))
            if not backlog:
                break
            t_sched, req = backlog.popleft()
        idle.append(proto)

    async def open_and_send(t_sched: float, req: bytes) -> None:
        proto = await _connect(host, port)
        await send(proto, t_sched, req)

    def start_task(task: asyncio.Task[None]) -> None:
        inflight.add(task)
        task.add_done_callback(inflight.discard)

    sent = 0
    loop = asyncio.get_running_loop()
    while True:
        now = time.time()
        if now >= end or run.exhausted:
            break
        due = int((now - run.start) / interval) + 1
        while sent < due and not run.exhausted:
            t_sched = run.start + sent * interval
            sent += 1
            req = run.next_request()
            if idle:
                start_task(loop.create_task(send(idle.popleft(), t_sched, req)))
            elif opened < connections:
                opened += 1
                start_task(loop.create_task(open_and_send(t_sched, req)))
            else:
                backlog.append((t_sched, req))
        # Sleep at least 1 ms: event-loop timers are not finer, and a shorter sleep
        # would spin. Requests that fell due meanwhile are sent together, each
        # still timed from its own scheduled time.
        await asyncio.sleep(max(0.001, run.start + sent * interval - time.time()))
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(30):
            while inflight:
                await asyncio.gather(*list(inflight), return_exceptions=True)
    for p in idle:
        if p.transport is not None:
            p.transport.close()


def main(
    url_host: str,
    url_port: int,
    path: str,
    *,
    sessions: int,
    tag: str,
    warmup: float,
    duration: float,
    connections: int,
    rate: float | None,
    out: Path,
    count: int | None = None,
    users: int = 0,
    user_tag: str | None = None,
) -> None:
    import uvloop

    requests = build_requests(
        url_host, url_port, path, sessions, tag, users=users, user_tag=user_tag
    )
    run = Run(requests, warmup, duration, count)
    cpu0 = time.process_time()

    async def go() -> None:
        if rate is None:
            await closed_loop(run, url_host, url_port, connections)
        else:
            await open_loop(run, url_host, url_port, rate, connections)

    uvloop.run(go())
    start, end = run.window
    doc = {
        "window": [start, end],
        "errors": run.errors,
        "cpu_seconds": round(time.process_time() - cpu0, 3),
        "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "records": run.records,
    }
    out.write_bytes(orjson.dumps(doc))
