"""The in-process view of partitions, and NOTIFY payload sizes."""

from __future__ import annotations

import asyncio
import time

import pytest

from flowhook.cluster.ownership import Ownership
from flowhook.cluster.partitions import PARTITIONS, partition_of
from flowhook.storage.hotpath import payloads


def test_a_lone_process_owns_every_partition_for_good() -> None:
    """Without leases (one process on its database) every partition is owned, unfenced
    (epoch 0), with no deadline."""
    own = Ownership(everything=True)
    assert len(own) == PARTITIONS
    assert own.epoch(partition_of("e", "s")) == 0
    assert own.runs_turns(17)


def test_ownership_lapses_at_its_deadline_until_renewed() -> None:
    """Granted partitions are owned only until the deadline the last renewal set: a
    process that stalls stops starting work before its leases expire in the database."""
    own = Ownership(everything=False)
    own.grant({3: 7})
    assert own.epoch(3) is None  # never renewed yet
    own.valid_until(time.monotonic() + 60)
    assert own.epoch(3) == 7
    assert own.epoch(4) is None
    own.valid_until(time.monotonic() - 1)
    assert own.epoch(3) is None
    assert own.owned() == [3]  # still listed: the next renewal decides


def test_a_claimed_partition_runs_no_turn_while_opening() -> None:
    """A partition just claimed is owned (its outputs may be taken) but runs no turn
    until it is opened."""
    own = Ownership(everything=False)
    own.valid_until(time.monotonic() + 60)
    own.grant({5: 1, 6: 1}, opening=True)
    assert own.epoch(5) == 1
    assert not own.runs_turns(5)
    own.opened([5])
    assert own.runs_turns(5)
    assert not own.runs_turns(6)
    own.revoke([6])
    assert own.epoch(6) is None


async def test_until_open_waits_for_every_opening_partition() -> None:
    """``until_open`` returns only once every partition granted as opening was opened or
    revoked; with none opening it returns at once."""
    own = Ownership(everything=False)
    await asyncio.wait_for(own.until_open(), 1)
    own.grant({3: 1, 4: 1}, opening=True)
    waiting = asyncio.ensure_future(own.until_open())
    own.opened([3])
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.shield(waiting), 0.05)
    own.revoke([4])
    await asyncio.wait_for(waiting, 1)
    own.grant({5: 2}, opening=True)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(own.until_open(), 0.05)


def test_notify_payloads_stay_under_the_limit_and_lose_nothing() -> None:
    """Long id lists are split into several payloads, each under the limit, together
    holding every id once and in order."""
    ids = [str(10**12 + i) for i in range(2000)]
    chunks = payloads(ids, limit=7000)
    assert len(chunks) > 1
    assert all(len(c) <= 7000 for c in chunks)
    assert ",".join(chunks).split(",") == ids
    assert payloads([]) == []
