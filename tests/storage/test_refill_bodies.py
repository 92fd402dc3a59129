"""The outbox refill on both backends: outputs due behind a session's head come with their
bodies when the head is on its first attempt (they go next: no read per attempt), and
without them behind a head that waits for its retry (memory keeps no body of a failing
session)."""

from __future__ import annotations

from flowhook.delivery.control import DeliveryControl
from flowhook.delivery.dispatcher import Dispatcher
from flowhook.delivery.retry import RetryPolicy
from flowhook.delivery.testing import RecordingLedger
from flowhook.delivery.types import AttemptResult, WebhookTarget
from flowhook.metrics import Metrics
from flowhook.storage.deliveries import DeliveryStore
from flowhook.storage.store import SqlStore
from tests.storage.test_due_read import add

BODY = len(b'{"n": 1}')  # the body ``add`` stores


class NoTransport:
    async def post(
        self, target: WebhookTarget, body: bytes, headers: dict[str, str]
    ) -> AttemptResult:
        raise AssertionError("nothing is sent: the dispatcher is not started")

    async def close(self) -> None:
        return None


async def resolve(endpoint_id: str) -> WebhookTarget | None:
    return WebhookTarget(url="http://unused.test/hook")


async def test_bodies_come_with_a_first_attempt_head_not_behind_a_retrying_one(
    store: SqlStore,
) -> None:
    """Session A: three fresh outputs; session B: a head due for its retry and two fresh
    outputs behind it. One refill takes all six; memory holds the bodies of A's three and
    of B's head, none of what waits behind B's head."""
    add(store, "e1", "A", 3)
    add(store, "e1", "B", 1, attempts=1)
    add(store, "e1", "B", 2)
    deliveries = DeliveryStore(store)
    control = DeliveryControl(deliveries, Metrics(), sweep_seconds=0)
    dispatcher = Dispatcher(
        NoTransport(),
        resolve,
        RecordingLedger(),
        RetryPolicy([]),
        window_per_endpoint=100,
        on_backlog=control.on_backlog,
        load_body=deliveries.pending_body,
    )
    control.attach(dispatcher)
    try:
        assert await control.resume("e1") == 6
        assert dispatcher.held_of("e1") == 6
        assert dispatcher.body_bytes_held() == 4 * BODY
    finally:
        await dispatcher.stop()
