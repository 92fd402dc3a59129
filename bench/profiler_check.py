"""Does py-spy charge samples where the time goes, on this machine?

A child process spins in pure Python and makes one cheap system call (``os.getpid``)
between spins, timing both itself. It runs twice under ``py-spy record``, once in the
default mode (py-spy stops the process for each sample) and once with
``--nonblocking`` (it reads the stacks while the process runs). Each mode's share of
samples in the system call is printed next to the share of time the child measured.

On the virtual machines the bench was developed on, the default mode charged the call
with 13 % of the samples for 0.6 % of the time: a stopped thread is caught at its next
system call far more often than elsewhere, so a profile taken that way inflates every
function that makes one (socket writes, thread wake-ups, ``asyncio.get_running_loop``,
which calls ``getpid``). ``bench run --profile`` therefore samples without stopping.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

_CHILD = """
import os, time

def spin(n):
    x = 0
    for i in range(n):
        x += i * i
    return x

def syscall():
    os.getpid()

def main(seconds):
    end = time.time() + seconds
    spun = called = 0.0
    while time.time() < end:
        a = time.perf_counter()
        spin(2000)
        b = time.perf_counter()
        syscall()
        c = time.perf_counter()
        spun += b - a
        called += c - b
    with open(os.environ["SHARE_FILE"], "w") as out:
        out.write(str(called / (spun + called)))

main(float(os.environ["SECONDS_TO_RUN"]))
"""


def _leaf_shares(raw: str) -> Counter[str]:
    leaves: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.strip().rpartition(" ")
        if stack:
            leaves[stack.split(";")[-1].split(" (")[0]] += int(count)
    return leaves


def check(seconds: float = 8.0) -> list[str]:
    """Run the child under both modes; one line per mode."""
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        child = Path(tmp) / "child.py"
        child.write_text(_CHILD)
        for mode in ([], ["--nonblocking"]):
            raw = Path(tmp) / "profile.txt"
            share = Path(tmp) / "share.txt"
            record = [pyspy, "record", *mode, "--rate", "200", "--format", "raw", "-o", str(raw)]
            subprocess.run(
                [*record, "--", sys.executable, str(child)],
                capture_output=True,
                text=True,
                check=True,
                env={"SECONDS_TO_RUN": str(seconds), "SHARE_FILE": str(share)},
            )
            measured = float(share.read_text())
            leaves = _leaf_shares(raw.read_text())
            total = sum(leaves.values()) or 1
            lines.append(
                f"py-spy {' '.join(mode) or '(default, stops the process)':<36} "
                f"samples in the system call {100 * leaves['syscall'] / total:5.1f} %, "
                f"time measured in it {100 * measured:4.2f} % ({total} samples)"
            )
    return lines
