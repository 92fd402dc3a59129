"""An in-process cache of endpoints and their key hashes, for the hot path.

The ingress must not touch the database to find an endpoint on every request.
Entries live ``ttl`` seconds; besides, ``flowhook.endpoints.generation`` clears the
cache before the next request whenever any process (the CLI, another server) changed
an endpoint or key, so a change holds from the very next request. Changes made
through this process's service are also applied at once by ``invalidate``. Unknown tokens are
cached too (so a flood of bad URLs cannot hammer the database), and the cache
is bounded so a flood of random tokens cannot grow it without limit.

An expired entry is served once more while one background read refreshes it
(with a TTL of 0, every lookup reads): thousands of requests a second must not all
wait for, or all start, a database read the moment an entry expires.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import structlog

from flowhook.endpoints.settings import EndpointSettings
from flowhook.storage.records import EndpointRecord
from flowhook.storage.store import SqlStore

log = structlog.get_logger(__name__)

MAX_ENTRIES = 100_000


@dataclass(frozen=True, slots=True)
class CachedEndpoint:
    record: EndpointRecord
    key_hashes: tuple[str, ...]
    key_ids: dict[str, str]  # key hash -> key id
    settings: EndpointSettings


@dataclass(slots=True)
class _Entry:
    value: CachedEndpoint | None
    expires: float


class EndpointCache:
    def __init__(self, store: SqlStore, ttl: float) -> None:
        self._store = store
        self._ttl = ttl
        self._by_token: dict[str, _Entry] = {}
        self._by_id: dict[str, _Entry] = {}
        self._loading: dict[str, asyncio.Future[CachedEndpoint | None]] = {}
        self._refreshing: set[asyncio.Task[None]] = set()
        # Bumped by clear(): a read that started before a clear must not fill the cache
        # with what it read (it may predate the change that caused the clear).
        self._epoch = 0

    def clear(self) -> None:
        """Forget everything: the stored configuration changed."""
        self._epoch += 1
        self._by_token.clear()
        self._by_id.clear()
        self._loading.clear()

    async def by_token(self, url_token: str) -> CachedEndpoint | None:
        entry = self._by_token.get(url_token)
        if entry is not None:
            if entry.expires > time.monotonic():
                return entry.value
            if self._ttl > 0:
                self._refresh_soon(url_token)
                return entry.value
        return await self._load_once(url_token)

    async def by_id(self, endpoint_id: str) -> EndpointRecord | None:
        cached = await self.entry_by_id(endpoint_id)
        return None if cached is None else cached.record

    async def entry_by_id(self, endpoint_id: str) -> CachedEndpoint | None:
        entry = self._by_id.get(endpoint_id)
        if entry is not None:
            if entry.expires > time.monotonic():
                return entry.value
            if entry.value is not None:
                # Through its token: one read however many ask, and served while it runs.
                fresh = await self.by_token(entry.value.record.url_token)
                if fresh is not None and fresh.record.id == endpoint_id:
                    return fresh
        epoch = self._epoch
        rec = await self._store.get_endpoint(endpoint_id)
        if rec is None:
            if epoch == self._epoch:
                self._by_id[endpoint_id] = _Entry(None, time.monotonic() + self._ttl)
            return None
        return await self.by_token(rec.url_token)

    async def _load_once(self, url_token: str) -> CachedEndpoint | None:
        loading = self._loading.get(url_token)
        if loading is not None:  # one database read per token, however many wait for it
            return await asyncio.shield(loading)
        future: asyncio.Future[CachedEndpoint | None] = asyncio.get_running_loop().create_future()
        self._loading[url_token] = future
        epoch = self._epoch
        try:
            value = await self._load(url_token)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters (if any) get it via shield
            raise
        finally:
            if self._loading.get(url_token) is future:
                del self._loading[url_token]
        future.set_result(value)
        if epoch == self._epoch:
            self._remember(url_token, value)
        return value

    def _refresh_soon(self, url_token: str) -> None:
        if url_token in self._loading:
            return
        task = asyncio.get_running_loop().create_task(self._refresh(url_token))
        self._refreshing.add(task)
        task.add_done_callback(self._refreshing.discard)

    async def _refresh(self, url_token: str) -> None:
        try:
            await self._load_once(url_token)
        except Exception as exc:  # storage away: the stale entry serves on, retried later
            log.warning("endpoint_cache.refresh_failed", error=type(exc).__name__)

    def invalidate(self, url_token: str) -> None:
        entry = self._by_token.pop(url_token, None)
        if entry is not None and entry.value is not None:
            self._by_id.pop(entry.value.record.id, None)
        else:
            self._by_id.clear()

    async def _load(self, url_token: str) -> CachedEndpoint | None:
        rec = await self._store.get_endpoint_by_token(url_token)
        if rec is None:
            return None
        keys = await self._store.list_api_keys(rec.id)
        return CachedEndpoint(
            record=rec,
            key_hashes=tuple(k.key_hash for k in keys),
            key_ids={k.key_hash: k.id for k in keys},
            settings=EndpointSettings.parse(rec.settings),
        )

    def _remember(self, url_token: str, value: CachedEndpoint | None) -> None:
        if len(self._by_token) >= MAX_ENTRIES:
            self._by_token.clear()
            self._by_id.clear()
        expires = time.monotonic() + self._ttl
        self._by_token[url_token] = _Entry(value, expires)
        if value is not None:
            self._by_id[value.record.id] = _Entry(value, expires)
