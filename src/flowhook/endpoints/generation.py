"""Operator changes hold from the very next request, in every process.

Every write to endpoints or API keys bumps the configuration generation in the same
transaction (``flowhook.storage.config_writes``), whichever tool made it. The ingress
checks a message against the cache and records the generation it checked under; the
commit of the message reads the stored generation in its own transaction and refuses
the message when it moved (``flowhook.storage.hotpath``): the ingress then calls
``ensure_fresh`` (the cache is cleared) and checks the message again. A refusal (401,
404) is checked again the same way before it is answered. Before each delivery attempt
``ensure_fresh`` runs too. So the next request after a change sees it, whatever it
changed: a revoked key, a deactivated or deleted endpoint, a new webhook URL or
credentials. There is no grace window (revocation is a security control).

The read is one primary-key lookup, and it is shared: callers that arrive while a read
runs wait for the next one (a read that started before them could miss a change
committed just before they arrived), so under load there is at most one read in flight
and one queued, whatever the request rate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from flowhook.endpoints.cache import EndpointCache
from flowhook.storage.store import SqlStore

log = structlog.get_logger(__name__)


class ConfigGeneration:
    def __init__(
        self,
        store: SqlStore,
        cache: EndpointCache,
        *,
        on_removed: Callable[[str], None] | None = None,
    ) -> None:
        """``on_removed`` is told of each endpoint deleted since the last change seen
        (metrics stop reporting it)."""
        self._store = store
        self._cache = cache
        self._on_removed = on_removed
        self._known: int | None = None
        self._ids: set[str] | None = None
        self._waiting: list[asyncio.Future[None]] = []
        self._running = False
        self.reads = 0

    @property
    def known(self) -> int | None:
        """The generation the cache reflects (None before the first read)."""
        return self._known

    async def ensure_fresh(self) -> None:
        """Return once the cache reflects every change committed before this call."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        if not self._running:
            self._running = True
            asyncio.get_running_loop().create_task(self._read_while_waited_for())
        await future

    async def _read_while_waited_for(self) -> None:
        try:
            while self._waiting:
                waiters, self._waiting = self._waiting, []
                error: BaseException | None = None
                try:
                    await self._check()
                except Exception as exc:  # storage away: each waiter gets the error
                    error = exc
                for future in waiters:
                    if future.done():
                        continue
                    if error is None:
                        future.set_result(None)
                    else:
                        future.set_exception(error)
        finally:
            self._running = False

    async def _check(self) -> None:
        self.reads += 1
        generation = await self._store.config_generation()
        if generation == self._known:
            return
        changed = self._known is not None
        self._cache.clear()
        self._known = generation
        if changed and self._on_removed is not None:
            ids = await self._store.endpoint_ids()
            for gone in (self._ids or set()) - ids:
                self._on_removed(gone)
            self._ids = ids
        elif self._on_removed is not None:
            self._ids = await self._store.endpoint_ids()
        if changed:
            log.debug("config.changed", generation=generation)
