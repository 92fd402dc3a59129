"""Deleting, now and then, transcript entries past each endpoint's retention and the
finished history (messages, outbox rows, delivery attempts) and transformers' session
storage past the server's."""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog

from flowhook.endpoints.settings import EndpointSettings
from flowhook.errors import FlowhookError
from flowhook.storage.housekeeping import purge_history
from flowhook.storage.insights import Insights
from flowhook.storage.session_storage import SessionStorageStore
from flowhook.storage.store import SqlStore

log = structlog.get_logger(__name__)

DAY = 86_400.0


class Retention:
    def __init__(
        self,
        store: SqlStore,
        insights: Insights,
        interval: float,
        history_days: float,
        analytics_days: float = 90.0,
    ) -> None:
        self._history_seconds = history_days * DAY
        self._analytics_seconds = analytics_days * DAY
        self._store = store
        self._insights = insights
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    async def purge_once(self) -> int:
        retention = {
            ep.id: EndpointSettings.parse(ep.settings).transcript_retention_days * DAY
            for ep in await self._store.list_endpoints()
        }
        deleted = await self._insights.purge_transcripts(retention)
        if deleted:
            log.info("transcripts.purged", entries=deleted)
        now = time.time()
        history = await purge_history(
            self._store, now - self._history_seconds, now - self._analytics_seconds
        )
        if any(history.values()):
            log.info("history.purged", **history)
        # Transformers' session storage lives as long as the finished history.
        stored = await SessionStorageStore(self._store).purge(now - self._history_seconds)
        if stored:
            log.info("session_storage.purged", sessions=stored)
        return deleted

    def start(self) -> None:
        if self._interval > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.purge_once()
            except FlowhookError as exc:  # storage down: try again next round
                log.warning("retention.purge_failed", error=str(exc))
            await asyncio.sleep(self._interval)
