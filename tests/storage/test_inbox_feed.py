"""Several processes on PostgreSQL: the owner of a session's partition learns of its new
messages from the notification each accepting transaction sends (``partition:id`` of
every message), runs those accepted elsewhere after reading them by id, and those
accepted itself from memory, in commit order, without scanning the inbox."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import pytest

from flowhook.cluster.listener import Listener
from flowhook.cluster.ownership import Ownership
from flowhook.cluster.partitions import PARTITIONS
from flowhook.cluster.scanner import LOCAL_NOTIFY_SECONDS, InboxScanner
from flowhook.storage import migrate
from flowhook.storage.hotpath import INBOX_CHANNEL
from flowhook.storage.records import InboundMessage
from flowhook.storage.store import SqlStore
from tests.support.messages import inbound as message

pytestmark = pytest.mark.postgres


class RecordingRunner:
    """Takes what the scanner submits, in order, as the session runner would."""

    backlog = 0

    def __init__(self) -> None:
        self.ran: list[tuple[str | None, bool]] = []  # (text, read back from the inbox)
        self._held: set[int] = set()

    def holds(self, message_id: int) -> bool:
        return message_id in self._held

    async def submit_fresh(self, read: Callable[[], Awaitable[Sequence[InboundMessage]]]) -> int:
        fresh = [m for m in await read() if m.id not in self._held]
        for m in fresh:
            self._held.add(m.id)
            self.ran.append((m.text, m.read_back))
        return len(fresh)

    async def until_ran(self, count: int) -> None:
        for _ in range(200):
            if len(self.ran) >= count:
                return
            await asyncio.sleep(0.025)


@pytest.fixture
async def stores(postgres_database: str) -> AsyncIterator[tuple[SqlStore, SqlStore]]:
    """Two processes' stores on one database: "w1" owns every partition, "w2" none."""
    from tests.support import postgres

    postgres.reset_schema(postgres_database)
    migrate.upgrade(postgres_database)
    here, there = SqlStore(postgres_database, owner="w1"), SqlStore(postgres_database, owner="w2")
    here.start()
    there.start()
    yield here, there
    here.close()
    there.close()


@pytest.fixture
async def owner(
    stores: tuple[SqlStore, SqlStore], postgres_database: str
) -> AsyncIterator[tuple[InboxScanner, RecordingRunner]]:
    """The owning process's scanner, listening, with no periodic scan: whatever reaches
    its runner came from a notification (or a scan it was told to do)."""
    ownership = Ownership(everything=False)
    ownership.grant(dict.fromkeys(range(PARTITIONS), 1))
    ownership.valid_until(float("inf"))
    runner = RecordingRunner()
    runner_any: Any = runner
    scanner = InboxScanner(
        stores[0], runner_any, ownership, scan_seconds=0, max_backlog=1000, worker_id="w1"
    )
    listener = Listener(
        postgres_database, {INBOX_CHANNEL: scanner.on_notify}, on_connect=scanner.mark_all
    )
    scanner.start()
    listener.start()
    await asyncio.wait_for(listener.connected.wait(), 10)
    await asyncio.wait_for(scanner.until_quiet(), 10)  # the scan every (re)connect asks for
    yield scanner, runner
    await listener.stop()
    await scanner.stop()


async def test_a_message_accepted_elsewhere_reaches_the_owner_by_its_notification(
    stores: tuple[SqlStore, SqlStore], owner: tuple[InboxScanner, RecordingRunner]
) -> None:
    """The owner reads a message another process accepted by its id, as soon as the
    notification arrives: no scan of the inbox runs for it."""
    scanner, runner = owner
    scans = scanner.scans
    await stores[1].accept_message(message("s1", "elsewhere"))
    await runner.until_ran(1)
    assert runner.ran == [("elsewhere", True)]
    assert scanner.scans == scans
    assert scanner.fed == 1


async def test_a_message_accepted_here_runs_from_memory_behind_an_earlier_one(
    stores: tuple[SqlStore, SqlStore], owner: tuple[InboxScanner, RecordingRunner]
) -> None:
    """A message the owner accepted itself runs without being read back, and only after
    a message of the same session that another process committed before it."""
    scanner, runner = owner
    await stores[1].accept_message(message("s1", "first"))
    second = message("s1", "second")
    second_id = await stores[0].accept_message(second)
    scanner.accepted(dataclasses.replace(second, id=second_id))
    await runner.until_ran(2)
    assert runner.ran == [("first", True), ("second", False)]
    await asyncio.wait_for(scanner.until_quiet(), 5)


async def test_a_message_accepted_here_whose_notification_never_comes_still_runs(
    stores: tuple[SqlStore, SqlStore],
) -> None:
    """Not listening (the LISTEN connection came up after the commit): the message
    accepted here waits for its notification only so long, then a scan takes it."""
    ownership = Ownership(everything=False)
    ownership.grant(dict.fromkeys(range(PARTITIONS), 1))
    ownership.valid_until(float("inf"))
    runner = RecordingRunner()
    runner_any: Any = runner
    scanner = InboxScanner(stores[0], runner_any, ownership, scan_seconds=0, max_backlog=1000)
    scanner.start()
    try:
        msg = message("s1", "unannounced")
        msg_id = await stores[0].accept_message(msg)
        scanner.accepted(dataclasses.replace(msg, id=msg_id))
        await asyncio.wait_for(scanner.until_quiet(), LOCAL_NOTIFY_SECONDS + 5)
        assert runner.ran == [("unannounced", True)]
    finally:
        await scanner.stop()
