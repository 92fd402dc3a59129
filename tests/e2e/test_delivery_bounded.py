"""Delivery under sustained failure, end to end on both backends: memory holds a bounded
window (pending work lives in the outbox), the sweep finds work of every endpoint whatever
another's backlog, hanging receivers cannot starve a healthy endpoint, a failed ledger write
never reorders a session, and per-endpoint state does not outlive its endpoint."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from flowhook.cluster.partitions import partition_of
from flowhook.delivery.service import DeliveryService
from flowhook.errors import StorageError
from flowhook.sessions import inbox as inbox_module
from flowhook.storage.deliveries import DeliveryStore
from flowhook.storage.store import SqlStore
from tests.e2e.conftest import REPO
from tests.e2e.test_delivery_guarantees import post_in_order, texts_by_session
from tests.support.outbox import insert_outputs
from tests.support.server import RunningServer, running_server
from tests.support.webhooks import Hit, WebhookReceiver, hang, status


def switchable(healthy: Callable[[], bool]) -> Callable[[Hit], Any]:
    """200 while ``healthy()``, 500 otherwise."""

    async def answer(_hit: Hit) -> web.StreamResponse:
        return web.Response(status=200 if healthy() else 500)

    return answer


@asynccontextmanager
async def sampling(probe: Callable[[], int]) -> AsyncIterator[list[int]]:
    """Samples ``probe()`` every few milliseconds while the block runs."""
    samples: list[int] = []

    async def run() -> None:
        while True:
            samples.append(probe())
            await asyncio.sleep(0.005)

    task = asyncio.create_task(run())
    try:
        yield samples
    finally:
        task.cancel()
        samples.append(probe())


async def in_memory_metric(server: RunningServer) -> float:
    async with server.http.get(server.base_url + "/metrics") as resp:
        text = await resp.text()
    line = next(x for x in text.splitlines() if x.startswith("flowhook_delivery_in_memory "))
    return float(line.split()[1])


async def test_memory_holds_a_bounded_window_while_a_receiver_fails(
    tmp_path: Path, db_url: str
) -> None:
    """With a receiver answering 500, 150 accepted outputs never put more than the window
    (20 for the endpoint) in memory, at any moment nor in the in-memory metric; the rest
    wait in the outbox. Once the receiver is back, every output arrives exactly once, each
    session's in order, and the window still holds at most 20 (memory at most 20 more whose
    delivered outcome is being written, without their bodies)."""
    up = False
    hook = WebhookReceiver(answer=switchable(lambda: up))
    await hook.start()
    try:
        async with running_server(
            tmp_path,
            db_url,
            REPO / "flows",
            delivery_retry_schedule=[1.5] * 20,
            delivery_window_per_endpoint=20,
            delivery_window_total=40,
            delivery_sweep_seconds=0.2,
        ) as server:
            dispatcher = server.services.dispatcher
            ep = await server.create_endpoint(name="down", flow="echo", webhookUrl=hook.url)
            in_window = functools.partial(dispatcher.in_window, ep["id"])
            async with sampling(lambda: dispatcher.held) as held, sampling(in_window) as window:
                await post_in_order(server, ep, sessions=30, per_session=5)
                await server.services.run_turns_until_idle(10)
                await asyncio.sleep(1.0)
                assert await in_memory_metric(server) <= 20
                assert max(held) <= 20  # nothing delivered yet
                up = True
                await hook.wait_until(lambda: len(hook.unique_accepted()) == 150, timeout=30)
            assert max(window) <= 20
            assert max(held) <= 40
            assert len(hook.hits) > 150  # the 500s were real attempts
    finally:
        await hook.stop()
    assert len(hook.accepted) == 150  # once each
    expected = [str(n) for n in range(5)]
    assert texts_by_session(hook) == {f"s{s}": expected for s in range(30)}


async def test_start_up_does_not_load_the_backlog(tmp_path: Path, db_url: str) -> None:
    """A restart with 60 outputs owed (their retries due in an hour) opens its port holding
    none of them: they stay in the outbox until due, and memory is bounded by the window
    meanwhile."""
    hook = WebhookReceiver(answer=status(500))
    await hook.start()
    try:
        settings: dict[str, Any] = {
            "delivery_retry_schedule": [3600],
            "delivery_window_per_endpoint": 10,
            "delivery_sweep_seconds": 0.2,
        }
        async with running_server(tmp_path, db_url, REPO / "flows", **settings) as server:
            ep = await server.create_endpoint(name="down", flow="echo", webhookUrl=hook.url)
            await post_in_order(server, ep, sessions=20, per_session=3)
            await server.services.run_turns_until_idle(10)
            await hook.wait_until(lambda: len(hook.hits) >= 20, timeout=10)
        async with running_server(tmp_path, db_url, REPO / "flows", **settings) as server:
            assert server.services.dispatcher.held == 0
            await asyncio.sleep(0.5)  # a couple of sweeps: nothing is due
            assert server.services.dispatcher.held == 0
            counts = await server.services.store.delivery_counts()
            assert counts.get("pending") == 60
    finally:
        await hook.stop()


def seed_outbox(db_url: str, endpoint_id: str, count: int, not_before: float) -> None:
    """``count`` pending outputs of an endpoint, one session each, already attempted once
    and due at ``not_before`` (written straight to the table: quick for large counts)."""
    store = SqlStore(db_url)
    now = time.time()
    rows = [
        {
            "delivery_id": f"msg_seed{i:07d}",
            "endpoint_id": endpoint_id,
            "session_id": f"seed{i}",
            "message_id": None,
            "body": '{"seed": true}',
            "status": "pending",
            "attempts": 1,
            "not_before": not_before,
            "created_at": now,
            "partition": partition_of(endpoint_id, f"seed{i}"),
        }
        for i in range(count)
    ]
    with store.engine.begin() as conn:
        insert_outputs(conn, rows)
    store.close()


async def test_a_large_backlog_hides_no_other_endpoints_work(tmp_path: Path, db_url: str) -> None:
    """With 10,050 older outputs of a dead endpoint waiting for their retry (more than any
    page the sweep reads), a replay and a switch-on made by another process (as the CLI
    does) reach a healthy endpoint's receiver within a second each."""
    healthy = WebhookReceiver()
    await healthy.start()
    try:
        async with running_server(
            tmp_path, db_url, REPO / "flows", delivery_sweep_seconds=0.2
        ) as server:
            dead = await server.create_endpoint(
                name="dead", flow="echo", webhookUrl="http://127.0.0.1:9/hook"
            )
            ok = await server.create_endpoint(name="ok", flow="echo", webhookUrl=healthy.url)
            await asyncio.to_thread(seed_outbox, db_url, dead["id"], 10_050, time.time() + 3600)
            await asyncio.sleep(0.5)  # a couple of sweeps with the backlog in place
            code, _ = await server.post_message(ok, {"userId": "u", "sessionId": "s", "text": "a"})
            assert code == 202
            await healthy.wait_until(lambda: len(healthy.accepted) == 1)
            await server.services.run_turns_until_idle(10)
            await asyncio.sleep(0.3)  # the delivery is recorded
            other = SqlStore(db_url)
            other.start()
            try:
                replay_id = healthy.accepted[0].webhook_id
                await DeliveryService(other).replay(replay_id)
                started = time.monotonic()
                await healthy.wait_until(lambda: len(healthy.accepted) == 2, timeout=5)
                assert time.monotonic() - started < 1.0

                await DeliveryStore(other).set_delivery_disabled(ok["id"], "paused", time.time())
                await asyncio.sleep(0.5)  # the server follows the stored switch
                code, _ = await server.post_message(
                    ok, {"userId": "u", "sessionId": "s", "text": "b"}
                )
                assert code == 202
                await server.services.run_turns_until_idle(10)
                await asyncio.sleep(0.3)
                assert len(healthy.accepted) == 2  # paused: held in the outbox
                await DeliveryStore(other).set_delivery_disabled(ok["id"], None, time.time())
                started = time.monotonic()
                await healthy.wait_until(lambda: len(healthy.accepted) == 3, timeout=5)
                assert time.monotonic() - started < 1.0
            finally:
                other.close()
    finally:
        await healthy.stop()
    assert [h.text for h in healthy.accepted] == ["You said: a", "You said: a", "You said: b"]


async def test_hanging_endpoints_cannot_starve_a_healthy_one(tmp_path: Path, db_url: str) -> None:
    """17 endpoints whose receiver never answers, 64 sessions each, with the default
    connection settings: they fill what they may, and an output of a healthy endpoint
    still arrives within a second."""
    release = asyncio.Event()
    stuck = WebhookReceiver(answer=hang(release))
    healthy = WebhookReceiver()
    await stuck.start()
    await healthy.start()
    try:
        async with running_server(
            tmp_path, db_url, REPO / "flows", delivery_total_timeout=60.0
        ) as server:
            hanging = [
                await server.create_endpoint(name=f"h{i}", flow="echo", webhookUrl=stuck.url)
                for i in range(17)
            ]
            ok = await server.create_endpoint(name="ok", flow="echo", webhookUrl=healthy.url)
            await asyncio.gather(*(post_in_order(server, ep, 64, 1) for ep in hanging))
            for _ in range(600):  # hanging answers never signal: poll, up to 30 s
                if stuck.in_flight >= 1000:
                    break
                await asyncio.sleep(0.05)
            assert stuck.in_flight >= 1000
            await asyncio.sleep(0.3)  # whatever else may start, has
            started = time.monotonic()
            code, _ = await server.post_message(ok, {"userId": "u", "sessionId": "s", "text": "x"})
            assert code == 202
            await healthy.wait_until(lambda: len(healthy.accepted) == 1, timeout=5)
            assert time.monotonic() - started < 1.0
            release.set()
    finally:
        release.set()
        await stuck.stop()
        await healthy.stop()


async def test_a_failed_ledger_write_after_a_2xx_keeps_the_session_in_order(
    tmp_path: Path, db_url: str
) -> None:
    """The outbox write recording a 2xx fails twice: the output is not sent again (not by
    the dispatcher, not by the sweep), the session's next outputs wait until it is
    recorded, and the receiver sees each output once, in order."""
    hook = WebhookReceiver()
    await hook.start()
    try:
        async with running_server(
            tmp_path, db_url, REPO / "flows", delivery_sweep_seconds=0.1
        ) as server:
            store = server.services.store
            real = store.record_attempt
            failures = [True, True]
            first: list[str] = []

            async def flaky(item: Any, attempt: Any, **kwargs: Any) -> None:
                if kwargs.get("status") == "delivered" and item.delivery_id in first and failures:
                    failures.pop()
                    await asyncio.sleep(0.2)  # long enough for sweeps to look meanwhile
                    raise StorageError("storage write failed: OperationalError")
                await real(item, attempt, **kwargs)

            store.record_attempt = flaky  # type: ignore[method-assign]
            ep = await server.create_endpoint(name="ok", flow="echo", webhookUrl=hook.url)
            original = hook.answer

            async def note_first(hit: Hit) -> web.StreamResponse:
                if not first:
                    first.append(hit.webhook_id)
                return await original(hit)

            hook.answer = note_first
            await post_in_order(server, ep, sessions=1, per_session=3)
            await hook.wait_until(lambda: len(hook.accepted) >= 3, timeout=10)
            await server.services.run_until_idle(10)
            await asyncio.sleep(0.5)  # several sweeps
            counts = await store.delivery_counts()
    finally:
        await hook.stop()
    assert not failures
    assert [h.text for h in hook.hits] == ["You said: 0", "You said: 1", "You said: 2"]
    assert counts == {"delivered": 3}


async def test_per_endpoint_state_goes_with_the_endpoint(tmp_path: Path, db_url: str) -> None:
    """Once an endpoint is idle, or deleted while its receiver failed, the dispatcher and
    the outbox reader keep nothing keyed by it."""
    ok_hook = WebhookReceiver()
    bad_hook = WebhookReceiver(answer=status(500))
    await ok_hook.start()
    await bad_hook.start()
    try:
        async with running_server(
            tmp_path,
            db_url,
            REPO / "flows",
            delivery_retry_schedule=[1.5] * 5,
            delivery_sweep_seconds=0.2,
        ) as server:
            dispatcher = server.services.dispatcher
            ok = await server.create_endpoint(name="ok", flow="echo", webhookUrl=ok_hook.url)
            bad = await server.create_endpoint(name="bad", flow="echo", webhookUrl=bad_hook.url)
            await post_in_order(server, ok, sessions=5, per_session=2)
            await post_in_order(server, bad, sessions=5, per_session=2)
            await ok_hook.wait_until(lambda: len(ok_hook.accepted) == 10)
            await bad_hook.wait_until(lambda: len(bad_hook.hits) >= 5)
            assert bad["id"] in dispatcher.tracked_endpoints()
            status_code, _ = await server.api("DELETE", f"/api/v1/endpoints/{bad['id']}?force=true")
            assert status_code == 204
            await server.services.run_until_idle(15)
            assert dispatcher.tracked_endpoints() == set()
            control = server.services.delivery_control
            swept = control.sweeps
            for _ in range(100):  # the next sweep forgets the read cursor and spacing
                if control.sweeps > swept + 1:
                    break
                await asyncio.sleep(0.05)
            assert control.tracked_endpoints() == set()
    finally:
        await ok_hook.stop()
        await bad_hook.stop()


async def test_remembered_api_key_uses_are_dropped_after_their_interval(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ingress remembers when each API key was last written as used (to write it at
    most once an interval); a key of a deleted endpoint is forgotten once the interval
    passed, so the map holds only the keys used lately."""
    monkeypatch.setattr(inbox_module, "KEY_TOUCH_INTERVAL", 0.2)
    hook = WebhookReceiver()
    await hook.start()
    try:
        async with running_server(tmp_path, db_url, REPO / "flows") as server:
            keys = []
            endpoints = []
            for name in ("a", "b"):
                ep = await server.create_endpoint(
                    name=name, flow="echo", webhookUrl=hook.url, authMethod="apiKey"
                )
                _, created = await server.api(
                    "POST", f"/api/v1/endpoints/{ep['id']}/api-keys", {"name": "k"}
                )
                endpoints.append(ep)
                keys.append(created["key"])
            body = {"userId": "u", "sessionId": "s", "text": "x"}
            code, _ = await server.post_message(endpoints[0], body, key=keys[0])
            assert code == 202
            assert server.services.inbox.tracked_keys == 1
            status_code, _ = await server.api(
                "DELETE", f"/api/v1/endpoints/{endpoints[0]['id']}?force=true"
            )
            assert status_code == 204
            await asyncio.sleep(0.3)
            code, _ = await server.post_message(endpoints[1], body, key=keys[1])
            assert code == 202
            assert server.services.inbox.tracked_keys == 1
    finally:
        await hook.stop()
