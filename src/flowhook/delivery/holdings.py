"""Which outputs memory holds, and the window slots they take.

An output is *held* from the moment the dispatcher takes it until its outcome is written
(or it is let go to the outbox): while held, the outbox refill does not hand it over
again, whatever it reads. A held output takes a slot of its endpoint's window
(``flowhook.delivery.window.FairShare``) while it is queued, in flight or waiting for a
retry.

Once its final outcome (delivered, failed) is queued to the ledger, an output gives its
slot back at once: it will not be sent again, and its write is a group commit away (one
fsync, milliseconds). Holding the slot for that long filled a busy endpoint's window with
outputs that were only waiting for their commit, and every output behind them was then
read back from the outbox instead of taken from memory (docs/performance.md, "The
delivery window"). It stays held (so it is not read back and sent again) and at the head
of its session's lane (so the session's next output waits for the write) until the write
commits. If the write is refused, the output takes a slot again, over the cap if it must,
until the write is taken: memory stays bounded while storage refuses writes. At most as
many outputs of an endpoint (and in all) as the window holds are recorded without a slot;
past that an output keeps its slot until its write commits, as before. So memory holds at
most twice the window's outputs, and the second half without bodies.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from contextlib import AbstractContextManager

from flowhook.delivery.types import PendingDelivery
from flowhook.delivery.window import FairShare
from flowhook.settled_during_reads import SettledDuringReads

# A backlogged endpoint is read again once 1/REFILL_FRACTION of its window is free.
REFILL_FRACTION = 4
_UNBOUNDED = 1 << 30


class Holdings:
    __slots__ = ("_ids", "_reads", "_recorded", "_recording", "_window")

    def __init__(self, per_endpoint: int | None, total: int | None) -> None:
        """``None`` caps are unbounded."""
        self._window = FairShare(per_endpoint, total)
        self._ids: set[int] = set()
        # Outputs whose final outcome is being written, without a slot: id -> endpoint id.
        self._recording: dict[int, str] = {}
        # ... and how many of them per endpoint (present only while non-zero).
        self._recorded: dict[str, int] = {}
        self._reads = SettledDuringReads()  # ids let go while outbox reads run

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, outbox_id: int) -> bool:
        return outbox_id in self._ids

    def of(self, endpoint_id: str) -> int:
        """Outputs of the endpoint held, with a slot or not (all still pending in the outbox)."""
        return self._window.of(endpoint_id) + self._recorded.get(endpoint_id, 0)

    def room(self, endpoint_id: str, unbounded: int) -> int:
        """How many more outputs of the endpoint the window would take now."""
        return self._window.room(endpoint_id, unbounded)

    def in_window(self, endpoint_id: str) -> int:
        """Window slots the endpoint takes now."""
        return self._window.of(endpoint_id)

    def worth_reading(self, endpoint_id: str) -> bool:
        """Whether the endpoint's window has room enough for a read of the outbox: empty,
        or a quarter of what it may hold free. A read walks every session of the endpoint
        with pending outputs, whatever it takes: with a busy backlogged endpoint, reading
        after each settled output cost more than the outputs it brought (docs/performance.md,
        "The delivery window"). The sweep reads anything left meanwhile."""
        mine = self._window.of(endpoint_id)
        if mine == 0:
            return True
        room = self._window.room(endpoint_id, _UNBOUNDED)
        return room * REFILL_FRACTION >= mine + room

    def endpoint_ids(self) -> set[str]:
        """Endpoints with an output held."""
        return self._window.endpoint_ids() | set(self._recorded)

    def take(self, item: PendingDelivery) -> bool:
        """Hold the item if the window has a slot for it; returns whether it did."""
        if not self._window.take(item.endpoint_id):
            return False
        self._ids.add(item.outbox_id)
        return True

    def recording(self, item: PendingDelivery) -> bool:
        """The item's final outcome was queued to the ledger: its slot is given back, and it
        stays held until ``forget``. Returns whether a slot was given back."""
        if item.outbox_id not in self._ids or item.outbox_id in self._recording:
            return False
        endpoint_id = item.endpoint_id
        per_endpoint, total = self._window.per_endpoint, self._window.total
        if (per_endpoint is not None and self._recorded.get(endpoint_id, 0) >= per_endpoint) or (
            total is not None and len(self._recording) >= total
        ):
            return False  # writes are slow: the window, not memory, waits for them
        self._window.give_back(endpoint_id)
        self._recording[item.outbox_id] = endpoint_id
        self._recorded[endpoint_id] = self._recorded.get(endpoint_id, 0) + 1
        return True

    def not_recorded(self, item: PendingDelivery) -> None:
        """The ledger refused the item's outcome: it takes a slot again (even past the cap:
        it is in memory already) until the write is taken."""
        endpoint_id = self._recording.pop(item.outbox_id, None)
        if endpoint_id is None:
            return
        self._uncount(endpoint_id)
        self._window.take_anyway(endpoint_id)

    def forget(self, item: PendingDelivery, *, let_go: bool = False) -> bool:
        """Memory no longer holds the item: its outcome is written, or (``let_go``) it was
        given back to the outbox still pending. An outbox read already running may have
        seen it pending: that read must not hand it over again, nor, when it was let go,
        anything of its session (it would overtake the item). Returns whether a window
        slot was freed (not when it was given back already, when the item's outcome was
        queued)."""
        outbox_id = item.outbox_id
        if outbox_id not in self._ids:
            return False
        self._ids.discard(outbox_id)
        self._reads.note(outbox_id, (item.endpoint_id, item.session_id) if let_go else None)
        endpoint_id = self._recording.pop(outbox_id, None)
        if endpoint_id is None:
            self._window.give_back(item.endpoint_id)
            return True
        self._uncount(endpoint_id)
        return False

    def watching(self) -> AbstractContextManager[Callable[[int, Hashable | None], bool]]:
        """Wrap an outbox read and the filtering of what it returned: yields whether an
        item (id, (endpoint, session)) is stale for the read: it settled, or something of
        its session was let go, since the read began."""
        return self._reads.reading()

    @property
    def reads_remembered(self) -> int:
        """Ids kept for outbox reads running now (zero when none runs)."""
        return len(self._reads)

    def clear(self) -> None:
        self._ids.clear()
        self._recording.clear()
        self._recorded.clear()
        self._window = FairShare(self._window.per_endpoint, self._window.total)

    def _uncount(self, endpoint_id: str) -> None:
        left = self._recorded[endpoint_id] - 1
        if left:
            self._recorded[endpoint_id] = left
        else:
            del self._recorded[endpoint_id]
