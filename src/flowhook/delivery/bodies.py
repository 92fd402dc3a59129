"""Output bodies in memory only while they may be sent now.

An output held by a lane that is not going anywhere soon (its attempt failed and it waits
for its retry, or it waits behind such a head) keeps its id and metadata, not its body:
with a window of outputs per endpoint and large outputs, the bodies of failing endpoints'
outputs would otherwise be most of the server's memory, for as long as their receivers
stay down. The body is read back from the outbox when the next attempt starts: the bytes
stored are the bytes sent, so the ``webhook-id`` and every signature are those of the
same body. A fresh output that goes out at once never pays for a read.

An output body is JSON, never empty: the empty body marks one that is not held.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Iterable

from flowhook.delivery.types import PendingDelivery

NOT_HELD = b""

# Reads a pending output's body back from the outbox; ``None``: it is no longer pending.
BodyLoader = Callable[[int], Awaitable[bytes | None]]


def without_body(item: PendingDelivery) -> PendingDelivery:
    if not item.body:
        return item
    # The constructor, not ``dataclasses.replace`` (which looks up every field by name):
    # once per delivered output.
    return PendingDelivery(
        item.outbox_id,
        item.delivery_id,
        item.endpoint_id,
        item.session_id,
        item.seq,
        NOT_HELD,
        item.attempts,
        item.not_before,
    )


def release_bodies(queue: deque[PendingDelivery]) -> None:
    """Drop the bodies of every output of a lane whose head waits for its retry."""
    for index, item in enumerate(queue):
        if item.body:
            queue[index] = without_body(item)


def held_body_bytes(items: Iterable[PendingDelivery]) -> int:
    return sum(len(i.body) for i in items)
