"""insert_in_order: keeping one session's queue sorted by seq."""

from __future__ import annotations

from collections import deque

from flowhook.delivery.lanes import insert_in_order
from flowhook.delivery.types import PendingDelivery


def item(seq: int) -> PendingDelivery:
    return PendingDelivery(seq, f"d{seq}", "e", "s", seq, b"{}")


def seqs(queue: deque[PendingDelivery]) -> list[int]:
    return [i.seq for i in queue]


def test_in_order_arrivals_append() -> None:
    """Ascending seqs are appended; only the first becomes head."""
    queue: deque[PendingDelivery] = deque()
    assert insert_in_order(queue, item(1), head_locked=False) is True
    assert insert_in_order(queue, item(2), head_locked=False) is False
    assert seqs(queue) == [1, 2]


def test_late_arrival_is_sorted_in() -> None:
    """A lower seq arriving late lands in its place, and may become head when allowed."""
    queue = deque([item(3), item(5)])
    assert insert_in_order(queue, item(4), head_locked=False) is False
    assert insert_in_order(queue, item(1), head_locked=False) is True
    assert seqs(queue) == [1, 3, 4, 5]


def test_locked_head_is_never_displaced() -> None:
    """While the head may be in flight, a lower seq goes right behind it, not before."""
    queue = deque([item(3), item(5)])
    assert insert_in_order(queue, item(1), head_locked=True) is False
    assert seqs(queue) == [3, 1, 5]
