"""glibc malloc settings for the server process, set at ``flowhook serve`` start.

Messages and outputs of 100 KiB and more are allocated and freed by the thousand (request
bodies, JSON texts, rows read from the outbox, on the event loop and on reader threads).
With glibc's defaults such a block comes from a heap arena (its mmap threshold starts at
128 KiB and rises as large blocks are freed), and the freed space stays with the process,
fragmented between the arenas of every thread that allocated: the resident size of a
server with failing receivers kept growing with the minutes, well past what it held
(docs/performance.md, "Receivers down for long"). With a fixed threshold of 64 KiB each
large block is its own mapping, returned to the system when freed, and fewer arenas keep
less free space.

Only where glibc's ``mallopt`` is there (Linux with glibc; not musl, not macOS), and not
when the operator set the same thing through the environment (``MALLOC_*_`` variables or
``GLIBC_TUNABLES``), which wins.
"""

from __future__ import annotations

import ctypes
import os
import sys

# mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

MMAP_THRESHOLD = 64 * 1024
ARENA_MAX = 2


def tune_allocator() -> bool:
    """Apply the settings above; returns whether they were applied."""
    if not sys.platform.startswith("linux"):
        return False
    if "GLIBC_TUNABLES" in os.environ or any(k.startswith("MALLOC_") for k in os.environ):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(M_ARENA_MAX, ARENA_MAX))
