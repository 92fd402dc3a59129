"""GET /metrics on the real server: delivery outcomes, latency, queue gauges, ingress."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.server import RunningServer
from tests.support.webhooks import WebhookReceiver, status


@pytest.fixture
async def hook() -> AsyncIterator[WebhookReceiver]:
    r = WebhookReceiver()
    await r.start()
    yield r
    await r.stop()


async def scrape(
    server: RunningServer, token: bool = False
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    headers = server.admin if token else {}
    async with server.http.get(server.base_url + "/metrics", headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        text = await resp.text()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_count_outcomes_latency_queue_and_ingress(
    server: RunningServer, hook: WebhookReceiver
) -> None:
    """Outcomes are counted per endpoint (delivered, retry, failed), each attempt's latency
    is observed, pending outputs of a paused endpoint show as queue depth and oldest age,
    and the ingress counts accepted messages, turns and refusals by status; the only
    labels are endpoint_id, outcome and status."""
    ok = await server.create_endpoint(name="ok", flow="echo", webhookUrl=hook.url)
    bad_hook = WebhookReceiver(answer=status(500))
    await bad_hook.start()
    try:
        bad = await server.create_endpoint(name="bad", flow="echo", webhookUrl=bad_hook.url)
        held = await server.create_endpoint(name="held", flow="echo", webhookUrl=hook.url)
        await server.api("PATCH", f"/api/v1/endpoints/{held['id']}", {"deliveryEnabled": False})
        for ep, n in ((ok, 2), (bad, 1), (held, 2)):
            for i in range(n):
                code, _ = await server.post_message(
                    ep, {"userId": "u", "sessionId": f"s{i}", "text": "hi"}
                )
                assert code == 202
        assert (await server.post_message(ok, {"userId": "u"}))[0] == 400
        bogus = {**ok, "endpointUrl": ok["endpointUrl"][:-4] + "zzzz"}
        assert (await server.post_message(bogus, {"userId": "u", "sessionId": "s", "text": "x"}))[
            0
        ] == 404
        await server.services.run_until_idle(10)
    finally:
        await bad_hook.stop()

    m = await scrape(server)

    def v(name: str, **labels: str) -> float | None:
        return m.get((name, tuple(sorted(labels.items()))))

    deliveries = "flowhook_deliveries_total"
    assert v(deliveries, endpoint_id=ok["id"], outcome="delivered") == 2
    assert v(deliveries, endpoint_id=bad["id"], outcome="retry") == 3
    assert v(deliveries, endpoint_id=bad["id"], outcome="failed") == 1
    assert v("flowhook_delivery_attempt_seconds_count", endpoint_id=ok["id"]) == 2
    assert v("flowhook_delivery_attempt_seconds_count", endpoint_id=bad["id"]) == 4
    assert v("flowhook_delivery_queue_depth", endpoint_id=held["id"]) == 2
    age = v("flowhook_delivery_oldest_pending_age_seconds", endpoint_id=held["id"])
    assert age is not None
    assert 0 <= age < 60
    assert v("flowhook_delivery_queue_depth", endpoint_id=ok["id"]) is None
    assert v("flowhook_endpoint_delivery_disabled", endpoint_id=held["id"]) == 1
    assert v("flowhook_messages_accepted_total") == 5
    assert v("flowhook_turns_total") == 5
    assert v("flowhook_ingress_rejected_total", status="400") == 1
    assert v("flowhook_ingress_rejected_total", status="404") == 1
    assert v("flowhook_metrics_storage_up") == 1
    label_names = {k for (_name, labels) in m for k, _ in labels}
    assert label_names <= {"endpoint_id", "outcome", "status", "le"}


async def test_metrics_can_require_the_admin_token(server: RunningServer) -> None:
    """With metrics_require_token, /metrics answers 401 without the admin token, 200 with it."""
    server.services.settings.metrics_require_token = True
    async with server.http.get(server.base_url + "/metrics") as resp:
        assert resp.status == 401
    assert ("flowhook_turns_total", ()) in await scrape(server, token=True)
