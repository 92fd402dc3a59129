"""Requests to rest endpoints waiting for their turn's outputs, by message id.

The turn may run in this process (the runner settles the request at once) or, with
several processes, in the one that owns the session: that one stores the outputs on
the message row and NOTIFYs its id, and this process reads them back.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import structlog

from flowhook.errors import StorageError
from flowhook.storage.store import SqlStore

log = structlog.get_logger(__name__)

Outputs = list[dict[str, Any]]

# Notified ids nobody waited for (yet), remembered this many at most: the notification of
# a fast turn may arrive before the accepting request registered its wait.
UNCLAIMED_MAX = 10_000


class Replies:
    def __init__(self, store: SqlStore) -> None:
        self._store = store
        self._waiting: dict[int, asyncio.Future[Outputs]] = {}
        self._fetches: set[asyncio.Task[None]] = set()
        self._unclaimed: OrderedDict[int, None] = OrderedDict()

    def expect(self, message_id: int) -> asyncio.Future[Outputs]:
        future: asyncio.Future[Outputs] = asyncio.get_running_loop().create_future()
        self._waiting[message_id] = future
        future.add_done_callback(lambda _f: self._waiting.pop(message_id, None))
        if message_id in self._unclaimed:
            del self._unclaimed[message_id]
            self._fetch_soon([message_id])  # its outputs were announced already
        return future

    def waits_for(self, message_id: int) -> bool:
        return message_id in self._waiting

    def settle(self, message_id: int, outputs: Outputs) -> None:
        future = self._waiting.pop(message_id, None)
        if future is not None and not future.done():
            future.set_result(outputs)

    def on_notify(self, payload: str) -> None:
        """A ``flowhook_reply`` notification: ids of messages whose outputs are stored."""
        try:
            ids = [int(i) for i in payload.split(",") if i]
        except ValueError:
            log.warning("cluster.bad_reply_notification", payload=payload[:100])
            return
        mine = [i for i in ids if i in self._waiting]
        for i in ids:
            if i not in self._waiting:
                self._unclaimed[i] = None
        while len(self._unclaimed) > UNCLAIMED_MAX:
            self._unclaimed.popitem(last=False)
        if mine:
            self._fetch_soon(mine)

    def fetch_waiting(self) -> None:
        """Read the stored outputs of every request still waiting (after notifications may
        have been missed)."""
        if self._waiting:
            self._fetch_soon(list(self._waiting))

    def _fetch_soon(self, ids: list[int]) -> None:
        task = asyncio.get_running_loop().create_task(self._fetch(ids))
        self._fetches.add(task)
        task.add_done_callback(self._fetches.discard)

    async def _fetch(self, ids: Iterable[int]) -> None:
        try:
            stored = await self._store.replies(list(ids))
        except StorageError as exc:  # the request times out like any late turn
            log.warning("cluster.reply_unreadable", error=str(exc))
            return
        for message_id, outputs in stored.items():
            self.settle(message_id, outputs)
