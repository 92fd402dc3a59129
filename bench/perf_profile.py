"""Where a server's CPU goes by the kernel's timer: ``perf record -g -e cpu-clock``.

py-spy sees Python frames; this sees everything the process runs, sampled by a timer
whatever the thread is doing: CPython's interpreter, the C libraries (SQLite, libc,
uvloop), and the kernel's side of each system call. The summary answers what py-spy
cannot: how much of the server's CPU is the interpreter lock changing hands (``futex``),
SQLite's file calls (``pwrite64``, ``pread64``, ``fdatasync``), socket writes and reads,
and which thread pays for each (thread names from ``py-spy dump``).

Needs Linux ``perf`` (Debian's ``linux-perf``) allowed to sample the server (root, or
``kernel.perf_event_paranoid`` <= 1); hardware counters are not needed (``cpu-clock``
is a software event), which is what virtual machines often lack.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

# The innermost system call a kernel stack went through: __x64_sys_<name>, or for read
# and write (whose entry points are inlined) ksys_<name>, "(socket)" when it went to one.
_SYSCALL = re.compile(r"\b(?:__x64_sys_|ksys_)(\w+)")
_SOCKET = re.compile(r"\bsock_(?:read|write)_iter\b|\btcp_(?:sendmsg|recvmsg)\b")
_FRAME = re.compile(r"^\s*[0-9a-f]+ (?P<sym>.*?) \((?P<dso>[^()]*)\)$")


def available() -> str | None:
    """None when ``perf`` can sample here, else why not."""
    perf = shutil.which("perf")
    if perf is None:
        return "perf is not installed (Debian: apt-get install linux-perf)"
    done = subprocess.run(
        [perf, "record", "-q", "-e", "cpu-clock", "-o", "/dev/null", "--", "true"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    if done.returncode != 0:
        return f"perf cannot sample here: {done.stderr.strip()[:200]}"
    return None


def record(pids: list[int], seconds: float, out: Path) -> subprocess.Popen[bytes]:
    """Start sampling ``pids`` (and their threads) for ``seconds``, 999 times a second."""
    return subprocess.Popen(
        [
            "perf",
            "record",
            "-q",
            "-g",
            "-e",
            "cpu-clock",
            "-F",
            "999",
            "-p",
            ",".join(str(p) for p in pids),
            "-o",
            str(out),
            "--",
            "sleep",
            str(seconds),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _dso_group(dso: str) -> str:
    name = Path(dso).name
    if dso.startswith("[kernel"):
        return "kernel"
    for prefix, group in (
        ("libpython", "CPython"),
        ("libsqlite3", "SQLite"),
        ("libc.so", "libc"),
        ("loop.cpython", "uvloop"),
        ("parser.cpython", "httptools"),
        ("orjson", "orjson"),
        ("_asyncio", "CPython"),
        ("_sqlite3", "CPython"),
    ):
        if name.startswith(prefix):
            return group
    return "other"


def parse(script: str) -> list[tuple[str, str, str | None]]:
    """``perf script -F tid,ip,sym,dso`` output -> (thread id, the leaf's code group,
    the innermost system call or None) per sample."""
    samples = []
    for block in script.split("\n\n"):
        lines = block.strip("\n").splitlines()
        if not lines or not lines[0].strip():
            continue
        tid = lines[0].split()[0]
        leaf = _FRAME.match(lines[1]) if len(lines) > 1 else None
        group = "other" if leaf is None else _dso_group(leaf.group("dso"))
        call = None
        for i, line in enumerate(lines[1:], 1):
            found = _SYSCALL.search(line)
            if found:
                call = found.group(1)
                if any(_SOCKET.search(inner) for inner in lines[1:i]):
                    call += " (socket)"
                break
        samples.append((tid, group, call))
    return samples


def summarise(data: Path, names: dict[str, str]) -> dict[str, Any]:
    """Shares of the samples by code group, by system call and by thread; ``names``:
    native thread id -> Python thread name."""
    script = subprocess.run(
        ["perf", "script", "-i", str(data), "-F", "tid,ip,sym,dso"],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    ).stdout
    samples = parse(script)
    total = len(samples) or 1
    groups = Counter(group for _tid, group, _call in samples)
    calls = Counter(call for _tid, _group, call in samples if call is not None)
    threads: Counter[str] = Counter()
    thread_calls: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for tid, _group, call in samples:
        name = names.get(tid, f"thread {tid}")
        threads[name] += 1
        if call is not None:
            thread_calls[name][call] += 1

    def pct(n: int) -> float:
        return round(100 * n / total, 1)

    text = [f"{len(samples)} samples (perf, cpu-clock, all threads)", "by code:"]
    text += [f"  {pct(n):5.1f}%  {group}" for group, n in groups.most_common()]
    text.append("system calls (kernel and C below them):")
    text += [f"  {pct(n):5.1f}%  {call}" for call, n in calls.most_common(8)]
    text.append("by thread (its system calls):")
    for name, n in threads.most_common(6):
        top = ", ".join(f"{c} {pct(k)}" for c, k in thread_calls[name].most_common(4))
        text.append(f"  {pct(n):5.1f}%  {name}" + (f" ({top})" if top else ""))
    return {
        "samples": len(samples),
        "code": {g: pct(n) for g, n in groups.items()},
        "system_calls": {c: pct(n) for c, n in calls.items()},
        "threads": {t: pct(n) for t, n in threads.items()},
        "text": text,
    }
