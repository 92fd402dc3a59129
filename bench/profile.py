"""Summarise a py-spy ``--format raw`` profile (collapsed stacks, ``--threads``).

Each line is ``thread (TID): Name;frame;...;frame COUNT`` with frames written as
``function (path/file.py:line)``, root first. Idle threads are not sampled, so a
sample is CPU time (or time spent holding/asking for the GIL) of one thread.

The summary answers "where does the time go":
- per thread (the event loop vs the storage writer vs the read pool),
- per component: the innermost frame that belongs to a third-party package or to
  a flowhook module (standard-library frames are charged to their caller),
- the hottest leaf functions (self time),
- flowhook functions by inclusive time (the share of samples they appear in).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]*)(?::(?P<line>\d+))?\)$")
_STDLIB = {
    "asyncio",
    "concurrent",
    "threading.py",
    "queue.py",
    "uuid.py",
    "json",
    "contextlib.py",
    "functools.py",
    "typing.py",
    "enum.py",
    "selectors.py",
    "socket.py",
    "ssl.py",
    "logging",
    "dataclasses.py",
    "collections",
    "abc.py",
    "weakref.py",
    "re",
    "random.py",
    "base64.py",
    "email",
    "urllib",
    "http",
    "inspect.py",
    "copy.py",
}


def _parse_frame(frame: str) -> tuple[str, str]:
    m = _FRAME.match(frame)
    if m is None:
        return frame, ""
    return m.group("func"), m.group("file")


def _component(path: str) -> str | None:
    """The owner of a frame: a package name, a flowhook module, or None for stdlib."""
    if not path:
        return None
    head = path.split("/", 1)[0]
    if head in _STDLIB or head.startswith("<"):
        return None
    if head == "flowhook":
        return path.removesuffix(".py").replace("/", ".")
    if "/" not in path:
        return None  # a top-level stdlib module we did not list
    return head


def _thread_name(first: str) -> str:
    name = first.split(": ", 1)[1] if ": " in first else first
    return re.sub(r"_\d+$", "", name)  # fh-read_0..3 are one pool


def summarise(raw: str, top: int = 15) -> dict[str, Any]:
    threads: Counter[str] = Counter()
    components: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = _thread_name(frames[0])
        parsed = [_parse_frame(f) for f in frames[1:]]
        total += count
        threads[thread] += count
        owner = "stdlib/other"
        for _func, path in reversed(parsed):
            comp = _component(path)
            if comp is not None:
                owner = comp
                break
        components[f"{thread}: {owner}"] += count
        if parsed:
            func, path = parsed[-1]
            leaves[f"{func} ({path})"] += count
        seen = {f"{func} ({path})" for func, path in parsed if path.startswith("flowhook/")} - {
            "serve (flowhook/cli/main.py)",
            "serve_forever (flowhook/cli/serve.py)",
        }
        for key in seen:
            inclusive[key] += count

    def pct(n: int) -> float:
        return round(100.0 * n / total, 1) if total else 0.0

    text = [f"{total} samples (all busy threads)"]
    text.append("by thread:")
    text += [f"  {pct(n):5.1f}%  {name}" for name, n in threads.most_common()]
    text.append("by component (innermost non-stdlib frame):")
    text += [f"  {pct(n):5.1f}%  {name}" for name, n in components.most_common(top)]
    text.append("hottest leaf functions (self):")
    text += [f"  {pct(n):5.1f}%  {name}" for name, n in leaves.most_common(top)]
    text.append("flowhook functions (inclusive):")
    text += [f"  {pct(n):5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    return {
        "samples": total,
        "threads": {k: pct(v) for k, v in threads.most_common()},
        "components": {k: pct(v) for k, v in components.most_common(40)},
        "leaves": {k: pct(v) for k, v in leaves.most_common(40)},
        "inclusive": {k: pct(v) for k, v in inclusive.most_common(40)},
        "text": text,
    }
