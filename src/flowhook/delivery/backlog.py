"""Which endpoints have outputs waiting in the outbox that memory does not hold.

An endpoint is *backlogged* once one of its outputs is left in the outbox (it did not
fit the window, or its lane let go to wait for a retry). While it is, its new outputs
are not taken from the session runner: older ones of the same sessions may be in the
outbox, so everything of it is read from there, in order. The reader (the outbox refill)
calls ``caught_up`` once the outbox holds nothing of it beyond memory.

Each change bumps the endpoint's *generation*: a reader that started before a change
cannot declare the endpoint caught up, since what it read may miss outputs left there
meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable


class Backlog:
    def __init__(
        self,
        on_backlog: Callable[[str], None] | None,
        on_change: Callable[[], None],
        *,
        cold: bool,
        on_arrival: Callable[[str], None] | None = None,
    ) -> None:
        """``on_backlog(endpoint_id)``: read the endpoint from the outbox (it became
        backlogged, or has room again). ``None``: there is no outbox to read from, and
        nothing is ever left there on purpose. ``cold``: until ``warm``, every endpoint
        counts as backlogged (start-up, before the outbox was looked at).
        ``on_arrival(endpoint_id)``: a new output of an endpoint already backlogged was
        left in the outbox (the reader may want to look soon)."""
        self._on_backlog = on_backlog
        self._on_arrival = on_arrival
        self._on_change = on_change
        self.cold = cold and on_backlog is not None
        self._generation: dict[str, int] = {}
        self._quiet: set[str] = set()  # nothing was due at the last read

    def __contains__(self, endpoint_id: str) -> bool:
        return endpoint_id in self._generation

    def __bool__(self) -> bool:
        return bool(self._generation)

    def endpoints(self) -> list[str]:
        return list(self._generation)

    def takes_direct(self, endpoint_id: str) -> bool:
        """Whether the endpoint's new outputs may come from the session runner."""
        return not self.cold and endpoint_id not in self._generation

    def generation(self, endpoint_id: str) -> int | None:
        return self._generation.get(endpoint_id)

    def all_quiet(self) -> bool:
        """Nothing due in the outbox for any backlogged endpoint, as last read."""
        return self._quiet.issuperset(self._generation)

    def spill(self, endpoint_id: str) -> None:
        """An output of the endpoint is (or may be) in the outbox and not in memory."""
        if self._on_backlog is None:
            return
        new = endpoint_id not in self._generation
        self._generation[endpoint_id] = self._generation.get(endpoint_id, 0) + 1
        self._quiet.discard(endpoint_id)
        if new:
            self._on_backlog(endpoint_id)

    def arrived(self, endpoint_id: str) -> None:
        """A new output of the endpoint was left in the outbox (it is backlogged, or the
        start-up has not looked at the outbox yet)."""
        known = endpoint_id in self._generation
        self.spill(endpoint_id)
        if known and self._on_arrival is not None:
            self._on_arrival(endpoint_id)

    def room(self, endpoint_id: str) -> None:
        """An output of the endpoint settled: memory has room again, and the next output of
        its session may be due now. Read more of it, if it is backlogged."""
        if self._on_backlog is not None and endpoint_id in self._generation:
            self._quiet.discard(endpoint_id)
            self._on_backlog(endpoint_id)

    def let_go(self, endpoint_id: str) -> None:
        """Memory let go of outputs of the endpoint that wait for a retry: they are in the
        outbox, and nothing of the endpoint became due. If its last read found nothing due,
        it is not read again for this (a failing endpoint lets go after every attempt, and
        each read walks its sessions): the next read comes with a new output, a settled
        one, or the sweep (due times, replays). Otherwise its freed room is read."""
        if self._on_backlog is None:
            return
        quiet = endpoint_id in self._quiet
        self.spill(endpoint_id)
        if quiet:
            self._quiet.add(endpoint_id)
        else:
            self.room(endpoint_id)

    def stir(self, endpoint_id: str) -> None:
        """The last read of the endpoint took outputs or could not read everything due:
        it is not quiet."""
        self._quiet.discard(endpoint_id)

    def caught_up(self, endpoint_id: str, generation: int) -> bool:
        if self._generation.get(endpoint_id) != generation:
            return False
        del self._generation[endpoint_id]
        self._quiet.discard(endpoint_id)
        self._on_change()
        return True

    def mark_quiet(self, endpoint_id: str, generation: int) -> None:
        if self._generation.get(endpoint_id) == generation:
            self._quiet.add(endpoint_id)
            self._on_change()

    def warm(self, backlogged: Iterable[str]) -> None:
        if not self.cold:
            return
        for endpoint_id in backlogged:
            self.spill(endpoint_id)
        self.cold = False
        self._on_change()

    def clear(self) -> None:
        self._generation.clear()
        self._quiet.clear()
