"""PostgreSQL: a group commit's accepts in one statement: the configuration generation
check, the insert and the notification to the partitions' owners, with the results each
write had when they were three statements."""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest

from flowhook.cluster.partitions import partition_of
from flowhook.storage.hotpath import INBOX_CHANNEL
from flowhook.storage.records import InboundMessage
from flowhook.storage.store import SqlStore, StaleConfig
from tests.support.messages import inbound

pytestmark = pytest.mark.postgres


def message(session: str, text: str, generation: int | None) -> InboundMessage:
    return inbound(session, text, data={"n": text}, generation=generation)


def listen(url: str) -> psycopg.Connection[tuple[object, ...]]:
    conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)
    conn.execute(f"LISTEN {INBOX_CHANNEL}")
    return conn


def announced(conn: psycopg.Connection[tuple[object, ...]], wanted: int) -> list[str]:
    """The payloads sent on the inbox channel until ``wanted`` entries have arrived."""
    payloads: list[str] = []
    deadline = time.monotonic() + 10
    while sum(len(p.split("|", 1)[1].split(",")) for p in payloads) < wanted:
        assert time.monotonic() < deadline, payloads
        payloads += [n.payload for n in conn.notifies(timeout=1, stop_after=1)]
    return payloads


async def test_a_mixed_batch_keeps_each_writes_result_and_announces_what_it_inserted(
    owned_store: SqlStore, postgres_database: str
) -> None:
    """In one group commit, a message checked under an older generation is refused with
    the stored one, the others (checked under the current generation or not checked) get
    ascending ids, and one notification names exactly those, "partition:id" in id order,
    after the sender."""
    current = await owned_store.config_generation()
    watcher = listen(postgres_database)
    try:
        batch = [
            message("s1", "a", current),
            message("s2", "stale", current - 1),
            message("s3", "b", None),
            message("s1", "c", current),
        ]
        results = await asyncio.gather(
            *(owned_store.accept_message(m) for m in batch), return_exceptions=True
        )
        assert isinstance(results[1], StaleConfig)
        assert results[1].generation == current
        ids = [r for r in (results[0], results[2], results[3]) if isinstance(r, int)]
        assert len(ids) == 3
        assert ids == sorted(ids)
        assert len(set(ids)) == 3
        kept = [batch[0], batch[2], batch[3]]
        expected = ",".join(
            f"{partition_of(m.endpoint_id, m.session_id)}:{i}"
            for m, i in zip(kept, ids, strict=True)
        )
        assert await asyncio.to_thread(announced, watcher, 3) == [f"w1|{expected}"]
        stored = await owned_store.pending_messages()
        assert [(m.id, m.text, m.data) for m in stored] == [
            (i, m.text, m.data) for m, i in zip(kept, ids, strict=True)
        ]
    finally:
        watcher.close()


async def test_a_batch_too_large_for_one_notification_is_still_accepted_and_announced(
    owned_store: SqlStore, postgres_database: str
) -> None:
    """A batch whose notification could pass PostgreSQL's payload limit takes the
    statement-by-statement way: every message is inserted, in order, and every one is
    announced across several notifications."""
    current = await owned_store.config_generation()
    watcher = listen(postgres_database)
    try:
        batch = [message(f"s{i}", f"m{i}", current) for i in range(600)]
        ids = await asyncio.gather(*(owned_store.accept_message(m) for m in batch))
        assert ids == sorted(ids)
        payloads = await asyncio.to_thread(announced, watcher, 600)
        assert len(payloads) > 1
        entries = [e for p in payloads for e in p.split("|", 1)[1].split(",")]
        assert [int(e.split(":")[1]) for e in entries] == ids
    finally:
        watcher.close()


async def test_an_empty_insert_sends_no_notification(
    owned_store: SqlStore, postgres_database: str
) -> None:
    """A group commit whose every accept was checked under an older generation inserts
    nothing and announces nothing."""
    current = await owned_store.config_generation()
    watcher = listen(postgres_database)
    try:
        stale = message("s1", "x", current - 1)
        with pytest.raises(StaleConfig):
            await owned_store.accept_message(stale)
        await owned_store.accept_message(message("s2", "after", current))
        (payload,) = await asyncio.to_thread(announced, watcher, 1)
        assert payload.count(":") == 1  # only the later message's announcement
        assert [m.text for m in await owned_store.pending_messages()] == ["after"]
    finally:
        watcher.close()
