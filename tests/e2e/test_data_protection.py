"""Data protection and analytics: transcripts (on/off, masked, retention), IP masking,
and the analytics API, through the real server and a real receiver."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.receiver import Receiver
from tests.support.server import RunningServer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MSG = {"userId": "u1", "sessionId": "s1", "text": "hello", "data": {"k": 1}}


async def transcript(server: RunningServer, ep: dict[str, Any], session: str) -> list[Any]:
    status, body = await server.api(
        "GET", f"/api/v1/endpoints/{ep['id']}/sessions/{session}/transcript"
    )
    assert status == 200, body
    items: list[Any] = body["items"]
    return items


async def test_transcript_lists_messages_in_and_out_in_order(
    server: RunningServer, receiver: Receiver
) -> None:
    """The transcript API lists a session's user messages and bot outputs (and notifies),
    in order, with their trace ids and the client's address."""
    ep = await server.create_endpoint(name="t", flow="echo", webhookUrl=receiver.url)
    _, first = await server.post_message(ep, MSG)
    async with server.http.post(
        ep["endpointUrl"] + "/notify", json={**MSG, "text": "fyi"}, headers=server.admin
    ) as resp:
        assert resp.status == 202
    await receiver.wait_for(2)
    items = await transcript(server, ep, "s1")
    assert [(i["direction"], i["source"], i["text"]) for i in items] == [
        ("in", "user", "hello"),
        ("out", "bot", "You said: hello"),
        ("out", "notify", "fyi"),
    ]
    assert items[0]["data"] == {"k": 1}
    assert items[0]["traceId"] == first["traceId"]
    assert items[0]["clientIp"] == "127.0.0.1"
    assert await transcript(server, ep, "other") == []


async def test_masked_and_disabled_endpoints_store_no_message_content(
    server: RunningServer, receiver: Receiver
) -> None:
    """A masked endpoint's transcript keeps the entries but no text or data; with
    storeTranscripts off nothing is kept; maskIpAddresses truncates the address."""
    masked = await server.create_endpoint(
        name="m",
        flow="echo",
        webhookUrl=receiver.url,
        maskSensitiveLogging=True,
        maskIpAddresses=True,
    )
    off = await server.create_endpoint(
        name="o", flow="echo", webhookUrl=receiver.url, storeTranscripts=False
    )
    await server.post_message(masked, {**MSG, "text": "card 4111-1111"})
    await server.post_message(off, MSG)
    await receiver.wait_for(2)
    items = await transcript(server, masked, "s1")
    assert [(i["direction"], i["text"], i["data"]) for i in items] == [
        ("in", None, None),
        ("out", None, None),
    ]
    assert items[0]["clientIp"] == "127.0.0.0"
    assert await transcript(server, off, "s1") == []

    def raw_rows(conn: Any) -> list[Any]:
        return list(conn.exec_driver_sql("SELECT text, data FROM transcripts").all())

    assert "4111" not in str(await server.services.store._read(raw_rows))


async def test_expired_transcripts_are_deleted(server: RunningServer, receiver: Receiver) -> None:
    """Entries older than the endpoint's retention are deleted by the purge; younger
    entries and other endpoints' entries stay."""
    short = await server.create_endpoint(
        name="short", flow="echo", webhookUrl=receiver.url, transcriptRetentionDays=1e-9
    )
    long = await server.create_endpoint(name="long", flow="echo", webhookUrl=receiver.url)
    await server.post_message(short, MSG)
    await server.post_message(long, MSG)
    await receiver.wait_for(2)
    assert await server.services.retention.purge_once() == 2
    assert await transcript(server, short, "s1") == []
    assert len(await transcript(server, long, "s1")) == 2


async def test_analytics_counts_a_time_range(server: RunningServer, receiver: Receiver) -> None:
    """Analytics counts messages in and out, sessions, intents, delivery outcomes and turn
    latency percentiles; an endpoint with collectAnalytics off records no turns."""
    ep = await server.create_endpoint(name="a", flow="echo", webhookUrl=receiver.url)
    quiet = await server.create_endpoint(
        name="q", flow="echo", webhookUrl=receiver.url, collectAnalytics=False
    )
    for i in range(4):
        await server.post_message(ep, {**MSG, "sessionId": f"s{i % 2}"})
    await server.post_message(quiet, MSG)
    await receiver.wait_for(5)
    await server.services.run_until_idle()
    status, stats = await server.api("GET", f"/api/v1/endpoints/{ep['id']}/analytics")
    assert status == 200
    assert (stats["messagesIn"], stats["messagesOut"], stats["turns"], stats["sessions"]) == (
        4,
        4,
        4,
        2,
    )
    assert stats["deliveries"]["delivered"] == 4
    assert stats["deliveries"]["successRate"] == 1.0
    assert stats["handovers"] == 0
    assert 0 <= stats["turnLatencyMs"]["p50"] <= stats["turnLatencyMs"]["p95"]
    _, none = await server.api("GET", f"/api/v1/endpoints/{quiet['id']}/analytics")
    assert (none["messagesIn"], none["turns"], none["turnLatencyMs"]["p50"]) == (1, 0, None)
    status, body = await server.api(
        "GET",
        f"/api/v1/endpoints/{ep['id']}/analytics?since=2030-01-01T00:00:00Z&until=2029-01-01T00:00:00Z",
    )
    assert (status, body["error"]["field"]) == (400, "since")
    assert (await server.api("GET", "/api/v1/endpoints/nope/analytics"))[0] == 404


async def test_analytics_counts_intents_hit(tmp_path: Any, db_url: str, receiver: Receiver) -> None:
    """Each turn's matched intent is counted, most frequent first."""
    from tests.support.server import running_server

    async with running_server(tmp_path, db_url, flows_dir=EXAMPLES) as srv:
        ep = await srv.create_endpoint(name="faq", flow="faq", webhookUrl=receiver.url)
        for i, text in enumerate(
            ["when are you open", "can I get a refund", "what are your opening hours"]
        ):
            await srv.post_message(ep, {"userId": "u", "sessionId": f"s{i}", "text": text})
        await receiver.wait_for(3)
        await srv.services.run_until_idle()
        _, stats = await srv.api("GET", f"/api/v1/endpoints/{ep['id']}/analytics")
    assert stats["intents"] == [
        {"intent": "opening_hours", "count": 2},
        {"intent": "returns", "count": 1},
    ]
