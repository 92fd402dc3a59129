"""Running flowhook's commands as real processes and reading what they print."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Proc:
    popen: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    pump: threading.Thread | None = None

    def output(self) -> str:
        with self.lock:
            return "".join(self.lines)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)
        if self.pump is not None:
            self.pump.join(timeout=5)
        if self.popen.stdout is not None:
            self.popen.stdout.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(argv: list[str], env: dict[str, str]) -> Proc:
    popen = subprocess.Popen(
        argv,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    proc = Proc(popen)

    def pump() -> None:
        assert popen.stdout is not None
        for line in popen.stdout:
            with proc.lock:
                proc.lines.append(line)

    proc.pump = threading.Thread(target=pump, daemon=True)
    proc.pump.start()
    return proc


def wait_for_line(proc: Proc, needle: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in proc.output():
            return
        if proc.popen.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(
        f"{needle!r} not printed within {timeout}s (exit={proc.popen.poll()}):\n{proc.output()[-3000:]}"
    )
