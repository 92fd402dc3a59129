"""One process's part in a group of processes sharing a PostgreSQL database.

Wires the coordinator (leases), the inbox scanner and the LISTEN connection to
the session runner and the dispatcher:

- a claimed partition: forget cached state of its sessions, scan its pending
  messages, hand its pending outputs to the dispatcher;
- a partition handed back or lost: the runner and the dispatcher let go of its
  sessions (running turns and POSTs in flight finish first);
- a message accepted here: run here once its own NOTIFY arrived, if this process owns
  its session, otherwise the owner hears of it through that NOTIFY.

An ingress-only process claims nothing; it only listens for stored rest replies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from flowhook.cluster.coordinator import Coordinator
from flowhook.cluster.leases import LEASE_CHANNEL, Worker
from flowhook.cluster.listener import Listener
from flowhook.cluster.ownership import Ownership
from flowhook.cluster.scanner import InboxScanner
from flowhook.delivery.control import DeliveryControl
from flowhook.delivery.dispatcher import Dispatcher
from flowhook.errors import StorageError
from flowhook.sessions.replies import Replies
from flowhook.sessions.runner import SessionRunner
from flowhook.storage.hotpath import INBOX_CHANNEL, REPLY_CHANNEL
from flowhook.storage.records import InboundMessage
from flowhook.storage.store import SqlStore

log = structlog.get_logger(__name__)


class ClusterNode:
    def __init__(
        self,
        *,
        store: SqlStore,
        worker: Worker,
        ownership: Ownership,
        runner: SessionRunner,
        dispatcher: Dispatcher,
        control: DeliveryControl,
        replies: Replies,
        listen_url: str,
        lease_seconds: float,
        scan_seconds: float,
        max_backlog: int,
        let_go_seconds: float,
    ) -> None:
        self.worker = worker
        self.ownership = ownership
        self._runner = runner
        self._dispatcher = dispatcher
        self._control = control
        self._let_go_seconds = let_go_seconds
        self.runs_turns = worker.role != "ingress"
        self.scanner = InboxScanner(
            store,
            runner,
            ownership,
            scan_seconds=scan_seconds,
            max_backlog=max_backlog,
            worker_id=worker.id,
        )
        self.coordinator = Coordinator(
            store,
            ownership,
            worker,
            lease_seconds=lease_seconds,
            on_acquired=self._acquired,
            on_released=self._released,
        )
        handlers: dict[str, Callable[[str], None]] = {REPLY_CHANNEL: replies.on_notify}
        if self.runs_turns:
            handlers[INBOX_CHANNEL] = self.scanner.on_notify
            handlers[LEASE_CHANNEL] = lambda _payload: self.coordinator.wake()
        self._replies = replies
        self.listener = Listener(listen_url, handlers, on_connect=self._connected)

    def _connected(self) -> None:
        """Listening (again): notifications sent meanwhile are lost, so look at all owned
        partitions and every reply still awaited."""
        self.scanner.mark_all()
        self._replies.fetch_waiting()

    def hand_over(self, msg: InboundMessage) -> None:
        """A message committed here: run here, after its own notification, if this process
        owns its session (``InboxScanner.accepted``)."""
        self.scanner.accepted(msg)

    async def start(self) -> None:
        self.listener.start()
        if self.runs_turns:
            self.scanner.start()
        await self.coordinator.start()

    async def stop(self) -> None:
        """Finish what runs, hand every partition back, stop listening."""
        await self.coordinator.stop()
        await self.scanner.stop()
        await self.listener.stop()

    async def _acquired(self, partitions: list[int]) -> None:
        """Owed outputs first, turns after: the partitions stay *opening* (no turn runs)
        until their pending outputs are with the dispatcher, so outputs of new turns never
        overtake older ones of the same session."""
        self._runner.forget(partitions)
        self.scanner.forget(partitions)
        delay = 0.1
        while True:
            try:
                taken = await self._control.take_partitions(partitions)
                break
            except StorageError as exc:
                log.warning("cluster.take_outputs_failed", error=str(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                partitions = [p for p in partitions if p in self.ownership.owned()]
                if not partitions:
                    return
        if taken:
            log.info("cluster.took_over_outputs", count=taken)
        self.ownership.opened(partitions)
        self.scanner.mark(partitions)

    async def _released(self, _partitions: list[int]) -> None:
        # Ownership already says these partitions are not ours: both let go of whatever
        # they hold that is no longer owned.
        await asyncio.gather(
            self._runner.let_go(self._let_go_seconds),
            self._dispatcher.let_go(self._let_go_seconds),
        )
