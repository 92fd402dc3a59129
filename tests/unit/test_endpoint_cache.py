"""The in-process endpoint cache: at most one database read per endpoint at a time."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

from flowhook.endpoints.cache import EndpointCache
from flowhook.storage.records import EndpointRecord
from flowhook.storage.store import SqlStore


def record(name: str = "old") -> EndpointRecord:
    now = time.time()
    return EndpointRecord(
        id="ep-1",
        name=name,
        flow="echo",
        url_token="tok",
        auth_method="none",
        webhook_url="http://127.0.0.1:9/hook",
        webhook_user=None,
        webhook_password=None,
        locale=None,
        active=True,
        created_at=now,
        updated_at=now,
    )


class CountingStore:
    """Stands in for the Store: counts reads; each waits until ``gate`` is open."""

    def __init__(self) -> None:
        self.rec = record()
        self.reads = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.returned = asyncio.Event()  # set as each read returns

    async def get_endpoint_by_token(self, url_token: str) -> EndpointRecord | None:
        self.reads += 1
        await self.gate.wait()
        self.returned.set()
        return self.rec if url_token == self.rec.url_token else None

    async def get_endpoint(self, endpoint_id: str) -> EndpointRecord | None:
        self.reads += 1
        await self.gate.wait()
        self.returned.set()
        return self.rec if endpoint_id == self.rec.id else None

    async def list_api_keys(self, endpoint_id: str) -> list[Any]:
        return []


async def test_an_expired_entry_is_served_while_one_read_refreshes_it() -> None:
    """When an entry expires, a burst of lookups (by token and by id) is answered at once
    from the old entry while exactly one read refreshes it; later lookups see the change."""
    store = CountingStore()
    cache = EndpointCache(cast(SqlStore, store), ttl=0.05)
    first = await cache.by_token("tok")
    assert first is not None
    assert store.reads == 1
    store.rec = record("new")
    await asyncio.sleep(0.06)  # expired
    store.gate.clear()  # the refresh cannot finish: whoever waits for it would hang
    async with asyncio.timeout(5):
        answers = await asyncio.gather(
            *(cache.by_token("tok") for _ in range(50)),
            *(cache.entry_by_id("ep-1") for _ in range(50)),
        )
    assert {a.record.name for a in answers if a is not None} == {"old"}
    assert store.reads == 2
    store.returned.clear()
    store.gate.set()
    async with asyncio.timeout(5):
        await store.returned.wait()  # the one refresh lands
    await asyncio.sleep(0)
    fresh = await cache.entry_by_id("ep-1")
    assert fresh is not None
    assert fresh.record.name == "new"


async def test_without_a_ttl_every_lookup_reads() -> None:
    """With a TTL of 0 nothing is served from memory: a change is seen at once."""
    store = CountingStore()
    cache = EndpointCache(cast(SqlStore, store), ttl=0)
    await cache.by_token("tok")
    store.rec = record("new")
    again = await cache.by_token("tok")
    assert again is not None
    assert again.record.name == "new"
    assert store.reads == 2
