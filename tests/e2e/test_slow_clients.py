"""Slow and idle clients cannot hold the server: header-read and keep-alive timeouts,
and a cap on open connections answered with a clear 503 (a real `flowhook serve`
process, raw sockets on loopback, bounded in count and time)."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import Proc, free_port, start, wait_for_line

REPO = Path(__file__).resolve().parents[2]
CAP = 40
EXTRA = 10


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """One server for the module (each test leaves no connection behind)."""
    tmp_path = tmp_path_factory.mktemp("slow-clients")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWHOOK_")}
    env.update(
        FLOWHOOK_DATA_DIR=str(tmp_path / "data"),
        FLOWHOOK_FLOWS_DIR=str(REPO / "flows"),
        FLOWHOOK_PORT=str(port),
        FLOWHOOK_HTTP_HEADER_TIMEOUT="1",
        FLOWHOOK_HTTP_KEEPALIVE_TIMEOUT="1",
        FLOWHOOK_HTTP_MAX_CONNECTIONS=str(CAP),
        PYTHONUNBUFFERED="1",
    )
    proc: Proc = start([sys.executable, "-m", "flowhook", "serve"], env)
    try:
        wait_for_line(proc, "flowhook is running", timeout=30)
        _wait_until_listening(port)
        yield port
    finally:
        proc.stop()


def _wait_until_listening(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            assert _get(port, "/healthz").startswith(b"HTTP/1.1 200")
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("the server did not answer /healthz")


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.settimeout(5)
    return sock


def _get(port: int, path: str) -> bytes:
    with _connect(port) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        return _read_all(sock)


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def _read_response(sock: socket.socket) -> bytes:
    """One whole response on a kept-alive connection: headers, then the body by its
    Content-Length (the server may write the two in separate segments)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_slow_headers_are_cut_and_connections_capped(server: int) -> None:
    """CAP slow-header connections are held open, the next ones get 503 with a JSON body
    at once; the slow ones are closed after the 1 s header timeout; then the server
    answers normally."""
    port = server
    slow: list[socket.socket] = []
    try:
        _hold_and_overflow(port, slow)
    finally:
        for sock in slow:
            sock.close()
    assert _get(port, "/healthz").startswith(b"HTTP/1.1 200")


def _hold_and_overflow(port: int, slow: list[socket.socket]) -> None:
    for _ in range(CAP):
        sock = _connect(port)
        slow.append(sock)
        sock.sendall(b"POST /endpoint/x HTTP/1.1\r\nHost: x\r\n")  # headers never finish
    time.sleep(0.2)
    refused = []
    for _ in range(EXTRA):
        with _connect(port) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            refused.append(_read_all(sock))
    assert all(r.startswith(b"HTTP/1.1 503") for r in refused), refused[0][:200]
    body = json.loads(refused[0].split(b"\r\n\r\n", 1)[1])
    assert body["error"]["code"] == "overloaded"

    started = time.monotonic()
    assert all(_closed_within(sock, 4) for sock in slow)
    assert time.monotonic() - started < 4


def test_a_client_trickling_headers_is_cut(server: int) -> None:
    """A client sending its headers one byte at a time (each byte resets no timer) is
    closed once the header timeout has passed since its request began."""
    with _connect(port := server) as sock:
        started = time.monotonic()
        closed = False
        for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if _closed_within(sock, 0.1):
                closed = True
                break
        assert closed
        assert time.monotonic() - started < 3
    assert _get(port, "/healthz").startswith(b"HTTP/1.1 200")


def test_idle_keep_alive_connections_are_closed(server: int) -> None:
    """A keep-alive connection left idle after its response is closed after the
    keep-alive timeout (1 s)."""
    with _connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _read_response(sock).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        assert _closed_within(sock, 4)
        assert time.monotonic() - started < 3
