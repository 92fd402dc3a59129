"""A lane: the ordered queue of one session's outputs, and the state of its worker."""

from __future__ import annotations

import asyncio
from bisect import insort
from collections import deque
from operator import attrgetter

from flowhook.delivery.types import PendingDelivery

_by_seq = attrgetter("seq")


class Lane:
    """Outputs owed to one (endpoint_id, session_id), lowest ``seq`` first.

    At any time a lane is in exactly one of three states: *running* (``task`` set),
    *parked* (``timer`` set: its head waits for a retry time) or *not started*
    (neither; only before the dispatcher starts). A running lane is ``sending``
    only while its head is being attempted.
    """

    __slots__ = ("due_id", "key", "pinned", "queue", "sending", "task", "timer")

    def __init__(self, key: tuple[str, str], queue: deque[PendingDelivery]) -> None:
        self.key = key
        self.queue = queue
        self.task: asyncio.Task[None] | None = None
        self.timer: asyncio.TimerHandle | None = None
        # outbox id of the head whose retry timer fired: it is due without re-checking
        self.due_id: int | None = None
        self.sending = False  # the head is being attempted right now: it must stay head
        # The outbox did not record the head's retry time: memory must keep the lane.
        self.pinned = False


def insert_in_order(
    queue: deque[PendingDelivery], item: PendingDelivery, *, head_locked: bool
) -> bool:
    """Add ``item`` by ``seq``; returns True when it became the new head.

    Outputs almost always arrive in order, so the common case is one append; an
    out-of-order arrival (e.g. re-claimed from the outbox) pays for a bisect.
    Equal ``seq`` keeps arrival order. With ``head_locked`` (the lane's worker may
    have the head in flight) the head is never displaced: a late lower ``seq`` goes
    right behind it, the best order still possible.
    """
    if not queue or queue[-1].seq <= item.seq:
        queue.append(item)
        return len(queue) == 1
    insort(queue, item, lo=1 if head_locked else 0, key=_by_seq)
    return queue[0] is item
