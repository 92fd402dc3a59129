"""Sessions hashed onto a fixed set of partitions, the unit of ownership between processes.

A session always lands in the same partition, and one process at a time owns a
partition (``flowhook.cluster.leases``): so one process at a time runs a session's
turns and delivers its outputs, which is what keeps per-session order across
processes. The count is part of the schema (one lease row per partition), not a
setting: every process must hash alike.
"""

from __future__ import annotations

import zlib

PARTITIONS = 256
# Outbox rows for an endpoint's handover provider carry this before the endpoint id:
# the dispatcher keeps them in order in their own lane and resolves the provider's URL.
# They belong to the session, so to its partition.
HANDOVER_PREFIX = "handover:"


def partition_of(endpoint_id: str, session_id: str) -> int:
    """The partition of a session (stable across processes, hosts and restarts)."""
    if endpoint_id.startswith(HANDOVER_PREFIX):
        endpoint_id = endpoint_id[len(HANDOVER_PREFIX) :]
    return zlib.crc32(f"{endpoint_id}\x00{session_id}".encode()) % PARTITIONS
