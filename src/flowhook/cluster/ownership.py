"""Which partitions this process owns right now, and under which lease epoch."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping

from flowhook.cluster.partitions import PARTITIONS, partition_of


class Ownership:
    """This process's view of its partitions.

    A process alone on its database owns every partition for good (epoch 0: commits are
    not fenced). With several processes, the coordinator grants partitions as it claims
    their leases and revokes them before it hands them back or when a lease was lost;
    the runner and the dispatcher take work only for partitions owned here.

    Two more rules with several processes:

    - Ownership lapses on its own at ``deadline`` (monotonic), a little before the
      leases renewed last expire in the database: a process that stalls (or is cut off)
      stops starting turns and POSTs for its partitions even before its coordinator
      notices, so it never works in parallel with a new owner.
    - A partition just claimed is *opening* until its owed outputs were handed to the
      dispatcher: no turn of it starts before, so new outputs never overtake old ones.
    """

    def __init__(self, *, everything: bool) -> None:
        self._epochs: dict[int, int] = dict.fromkeys(range(PARTITIONS), 0) if everything else {}
        self._opening: set[int] = set()
        self._all_open = asyncio.Event()  # set while no partition is opening
        self._all_open.set()
        self._deadline = float("inf") if everything else 0.0

    def epoch(self, partition: int) -> int | None:
        """The epoch of the lease held on ``partition``; None when it is not owned here."""
        if time.monotonic() >= self._deadline:
            return None
        return self._epochs.get(partition)

    def runs_turns(self, partition: int) -> bool:
        """Owned, and no longer opening: its messages may be run."""
        return partition not in self._opening and self.epoch(partition) is not None

    def owns(self, endpoint_id: str, session_id: str) -> bool:
        return self.epoch(partition_of(endpoint_id, session_id)) is not None

    def owned(self) -> list[int]:
        return sorted(self._epochs)

    def grant(self, leases: Mapping[int, int], *, opening: bool = False) -> None:
        self._epochs.update(leases)
        if opening and leases:
            self._opening.update(leases)
            self._all_open.clear()

    def opened(self, partitions: Iterable[int]) -> None:
        self._opening.difference_update(partitions)
        if not self._opening:
            self._all_open.set()

    async def until_open(self) -> None:
        """Wait until no owned partition is opening (messages accepted meanwhile are
        scanned once it opens, not handed over at acceptance)."""
        await self._all_open.wait()

    def revoke(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            self._epochs.pop(partition, None)
            self._opening.discard(partition)
        if not self._opening:
            self._all_open.set()

    def lapsed(self) -> bool:
        """Whether ownership lapsed (the last renewal is too old) and work was let go."""
        return time.monotonic() >= self._deadline

    def valid_until(self, deadline: float) -> None:
        """The leases were renewed: ownership holds until ``deadline`` (monotonic)."""
        self._deadline = deadline

    def __len__(self) -> int:
        return len(self._epochs)
