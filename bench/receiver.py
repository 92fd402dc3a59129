"""The receiving webhook server: a raw asyncio HTTP/1.1 server that counts deliveries.

It answers ``200`` with an empty body to every POST, and for each one records the
time it arrived (``time.time()``) and the ``traceId`` found in the body, so the
orchestrator can join deliveries with the load generator's accepted messages.
Written on bare asyncio protocols (no framework) so that the receiver costs as
little CPU as possible on a machine it shares with the server under test.

Control routes (GET): ``/__bench/count`` (deliveries so far) and
``/__bench/collect`` (JSON ``[[t, traceId], ...]`` of the records, then cleared).
"""

from __future__ import annotations

import asyncio
import signal
import time
from typing import cast

import orjson

_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
_TRACE = b'"traceId":"'


class Records:
    def __init__(self) -> None:
        self.times: list[float] = []
        self.traces: list[bytes] = []
        self.total = 0


class ReceiverProtocol(asyncio.Protocol):
    def __init__(self, records: Records) -> None:
        self._records = records
        self._buf = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        out: list[bytes] = []
        while True:
            head_end = buf.find(b"\r\n\r\n")
            if head_end < 0:
                break
            head = bytes(buf[:head_end])
            length = _content_length(head)
            end = head_end + 4 + length
            if len(buf) < end:
                break
            body = bytes(buf[head_end + 4 : end])
            del buf[:end]
            out.append(self._handle(head, body))
        if out and self._transport is not None:
            self._transport.write(b"".join(out))

    def _handle(self, head: bytes, body: bytes) -> bytes:
        if head.startswith(b"GET /__bench/"):
            return self._control(head)
        records = self._records
        records.total += 1
        records.times.append(time.time())
        start = body.find(_TRACE)
        if start >= 0:
            start += len(_TRACE)
            records.traces.append(body[start : body.find(b'"', start)])
        else:
            records.traces.append(b"")
        return _OK

    def _control(self, head: bytes) -> bytes:
        records = self._records
        if head.startswith(b"GET /__bench/collect"):
            payload = orjson.dumps(
                [[t, tr.decode()] for t, tr in zip(records.times, records.traces, strict=True)]
            )
            records.times = []
            records.traces = []
        else:
            payload = orjson.dumps({"total": records.total})
        return (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(payload)).encode()
            + b"\r\n\r\n"
            + payload
        )


def _content_length(head: bytes) -> int:
    lower = head.lower()
    pos = lower.find(b"\r\ncontent-length:")
    if pos < 0:
        return 0
    pos += len(b"\r\ncontent-length:")
    end = lower.find(b"\r\n", pos)
    return int(lower[pos : end if end >= 0 else len(lower)].strip())


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    records = Records()
    server = await loop.create_server(
        lambda: ReceiverProtocol(records), host, port, backlog=4096, reuse_address=True
    )
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"receiver listening on {host}:{port}", flush=True)
    await stop.wait()
    server.close()


def main(host: str, port: int) -> None:
    import uvloop

    uvloop.run(serve(host, port))
