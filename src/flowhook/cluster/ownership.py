"""Which partitions this process owns right now, and under which lease epoch."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from flowhook.cluster.partitions import PARTITIONS, partition_of


class Ownership:
    """This process's view of its partitions.

    A process alone on its database owns every partition for good (epoch 0: commits are
    not fenced). With several processes, the coordinator grants partitions as it claims
    their leases and revokes them before it hands them back or when a lease was lost;
    the runner and the dispatcher take work only for partitions owned here.
    """

    def __init__(self, *, everything: bool) -> None:
        self._epochs: dict[int, int] = dict.fromkeys(range(PARTITIONS), 0) if everything else {}

    def epoch(self, partition: int) -> int | None:
        """The epoch of the lease held on ``partition``; None when it is not owned here."""
        return self._epochs.get(partition)

    def owns(self, endpoint_id: str, session_id: str) -> bool:
        return partition_of(endpoint_id, session_id) in self._epochs

    def owned(self) -> list[int]:
        return sorted(self._epochs)

    def grant(self, leases: Mapping[int, int]) -> None:
        self._epochs.update(leases)

    def revoke(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            self._epochs.pop(partition, None)

    def __len__(self) -> int:
        return len(self._epochs)
