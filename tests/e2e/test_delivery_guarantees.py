"""Delivery guarantees end to end: real server, real receivers on loopback, both backends."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import REPO
from tests.support.server import RunningServer, running_server
from tests.support.webhooks import WebhookReceiver, hang, status

FAST_RETRIES = [0.05, 0.1, 0.2, 0.5, 1, 1, 1, 1]


async def post_in_order(
    server: RunningServer, ep: dict[str, Any], sessions: int, per_session: int
) -> None:
    """Each session's messages one after the other (so their order is defined); the
    sessions in parallel."""

    async def one_session(s: int) -> None:
        for n in range(per_session):
            body = {"userId": "u", "sessionId": f"s{s}", "text": str(n)}
            code, answer = await server.post_message(ep, body)
            assert code == 202, answer

    await asyncio.gather(*(one_session(s) for s in range(sessions)))


def texts_by_session(hook: WebhookReceiver) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for hit in hook.unique_accepted():
        out.setdefault(hit.session, []).append(hit.text.removeprefix("You said: "))
    return out


async def test_receiver_down_then_up_everything_arrives_in_order(
    tmp_path: Path, db_url: str
) -> None:
    """While the receiver is down every output fails and waits; once it is back on the same
    port, every output arrives, each session's in order."""
    hook = WebhookReceiver()
    await hook.start()
    await hook.stop()  # the port is known, nobody listens
    async with running_server(
        tmp_path, db_url, REPO / "flows", delivery_retry_schedule=FAST_RETRIES
    ) as server:
        ep = await server.create_endpoint(name="down", flow="echo", webhookUrl=hook.url)
        await post_in_order(server, ep, sessions=10, per_session=5)
        await server.services.run_turns_until_idle(10)
        # every session's head has failed once and waits for its retry
        await server.services.dispatcher.run_until_idle(10, include_scheduled=False)
        assert server.services.dispatcher.held == 50
        await hook.start()
        try:
            await hook.wait_until(lambda: len(hook.unique_accepted()) == 50, timeout=15)
        finally:
            await hook.stop()
    expected = [str(n) for n in range(5)]
    assert texts_by_session(hook) == {f"s{s}": expected for s in range(10)}


async def test_hanging_endpoint_does_not_hold_up_a_healthy_one(tmp_path: Path, db_url: str) -> None:
    """A receiver that never answers uses up only its own endpoint's slots (the cap holds):
    all the healthy endpoint's outputs arrive meanwhile."""
    release = asyncio.Event()
    stuck = WebhookReceiver(answer=hang(release))
    healthy = WebhookReceiver()
    await stuck.start()
    await healthy.start()
    try:
        async with running_server(
            tmp_path,
            db_url,
            REPO / "flows",
            delivery_max_per_endpoint=2,
            delivery_total_timeout=60.0,
        ) as server:
            slow_ep = await server.create_endpoint(name="slow", flow="echo", webhookUrl=stuck.url)
            ok_ep = await server.create_endpoint(name="ok", flow="echo", webhookUrl=healthy.url)
            await post_in_order(server, slow_ep, sessions=6, per_session=1)
            await post_in_order(server, ok_ep, sessions=10, per_session=4)
            await healthy.wait_until(lambda: len(healthy.accepted) == 40, timeout=15)
            assert len(stuck.hits) == 2
            assert stuck.max_in_flight == 2
            assert texts_by_session(healthy) == {f"s{s}": ["0", "1", "2", "3"] for s in range(10)}
            release.set()
    finally:
        release.set()
        await stuck.stop()
        await healthy.stop()


CASES = {
    # name: (answers in turn, the last repeats), expected final status, attempt codes
    "500-then-200": ([status(500), status(200)], "delivered", [500, 200]),
    "429-retry-after": (
        [status(429, {"Retry-After": "1"}), status(200)],
        "delivered",
        [429, 200],
    ),
    "301-not-followed": ([status(301, {"Location": "/elsewhere"})], "failed", [301, 301, 301]),
}


@pytest.mark.parametrize("case", [*CASES, "hanging"])
async def test_receiver_answers_behave_as_specified(tmp_path: Path, db_url: str, case: str) -> None:
    """Through the whole server, the attempt log shows: 500 retried then delivered; 429 with
    Retry-After: 1 waited at least that long; 301 a failure, never followed, given up after
    the last attempt; a hanging receiver cut off by the total timeout, then given up."""
    release = asyncio.Event()
    answers = CASES[case][0] if case in CASES else [hang(release)]
    hook = WebhookReceiver()

    async def scripted(hit: Any) -> Any:
        return await answers[min(len(hook.hits), len(answers)) - 1](hit)

    hook.answer = scripted
    await hook.start()
    try:
        async with running_server(
            tmp_path,
            db_url,
            REPO / "flows",
            delivery_retry_schedule=[0.05, 0.05],
            delivery_total_timeout=0.3,
        ) as server:
            ep = await server.create_endpoint(name="c", flow="echo", webhookUrl=hook.url)
            code, _ = await server.post_message(ep, {"userId": "u", "sessionId": "s", "text": "x"})
            assert code == 202
            await server.services.run_until_idle(10)
            _, page = await server.api("GET", f"/api/v1/endpoints/{ep['id']}/deliveries")
            (item,) = page["items"]
            _, shown = await server.api("GET", f"/api/v1/deliveries/{item['id']}")
    finally:
        release.set()
        await hook.stop()
    attempts = shown["attempts"]
    if case == "hanging":
        assert shown["status"] == "failed"
        assert [a["statusCode"] for a in attempts] == [None, None, None]
        assert all("timeout" in a["error"] for a in attempts)
        return
    _answers, final, codes = CASES[case]
    assert shown["status"] == final
    assert [a["statusCode"] for a in attempts] == codes
    assert {h.webhook_id for h in hook.hits} == {item["id"]}
    if case == "429-retry-after":
        first, second = (datetime.fromisoformat(a["at"]) for a in attempts)
        assert (second - first).total_seconds() >= 0.9
