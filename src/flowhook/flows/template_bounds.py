"""Bounds on one template rendering: output size and wall time.

The sandbox already refuses unsafe attributes and ``range`` beyond 100,000 items;
these bounds cover what is left: a rendering that produces too much text, and one
that runs too long (nested loops over data). Templates that can loop, call or
multiply are compiled with ``bounded``; plain ones (``{{ context.name }}``) cannot
run long and skip the (about 1 µs) cost.

The time bound uses ``ITIMER_REAL``/``SIGALRM``, armed only for the rendering, and
only in the main thread (where the server's event loop runs; the handler raises
only while a rendering is in progress, so a late signal is harmless). Elsewhere the
size bound still applies.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

from jinja2.exceptions import SecurityError

MAX_OUTPUT_CHARS = 100_000
MAX_SECONDS = 1.0

RenderFunction = Callable[[Any], Iterator[str]]


class _Alarm:
    """The process's SIGALRM while a template renders (one rendering at a time)."""

    def __init__(self) -> None:
        self.rendering = False
        self.installed = False
        self.seconds = MAX_SECONDS

    def install(self) -> bool:
        if self.installed:
            return True
        if threading.current_thread() is not threading.main_thread():
            return False
        if signal.getsignal(signal.SIGALRM) not in (signal.SIG_DFL, None):
            return False  # someone else's alarm: leave it alone
        signal.signal(signal.SIGALRM, self._fire)
        self.installed = True
        return True

    def _fire(self, _signum: int, _frame: FrameType | None) -> None:
        if self.rendering:
            self.rendering = False
            raise SecurityError(f"the template ran longer than {self.seconds:g} s")


_ALARM = _Alarm()


def bounded(
    render: RenderFunction,
    max_chars: int = MAX_OUTPUT_CHARS,
    max_seconds: float = MAX_SECONDS,
) -> Callable[[Any], list[str]]:
    """``render`` (a template's ``root_render_func``) with size and time bounds."""

    def run(context: Any) -> list[str]:
        timed = (
            threading.current_thread() is threading.main_thread()
            and not _ALARM.rendering
            and _ALARM.install()
        )
        if timed:
            _ALARM.seconds = max_seconds
            _ALARM.rendering = True
            signal.setitimer(signal.ITIMER_REAL, max_seconds)
        try:
            chunks: list[str] = []
            size = 0
            for chunk in render(context):
                size += len(chunk)
                if size > max_chars:
                    raise SecurityError(f"the template's output is over {max_chars} characters")
                chunks.append(chunk)
            return chunks
        finally:
            if timed:
                _ALARM.rendering = False
                signal.setitimer(signal.ITIMER_REAL, 0)

    return run


def check_arguments(args: tuple[Any, ...], kwargs: dict[str, Any], limit: int) -> None:
    """Refuse integer arguments that would build huge strings (``center(10**9)``)."""
    for value in (*args, *kwargs.values()):
        if type(value) is int and abs(value) > limit:
            raise SecurityError(f"the argument {value} is over the template limit {limit}")
