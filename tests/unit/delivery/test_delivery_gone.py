"""Dispatcher: 410 Gone switches an endpoint off, the switch itself, and submit_fresh."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from structlog.testing import capture_logs

from flowhook.delivery.control import DeliveryControl
from flowhook.delivery.dispatcher import GONE_ERROR, Dispatcher
from flowhook.delivery.retry import RetryPolicy
from flowhook.delivery.testing import RecordingLedger
from flowhook.delivery.types import AttemptResult, PendingDelivery, WebhookTarget
from flowhook.metrics import Metrics

_ids = itertools.count(1000)


def item(seq: int, session: str = "s1", endpoint: str = "e1") -> PendingDelivery:
    outbox_id = next(_ids)
    body = f"{endpoint}/{session}/{seq}".encode()
    return PendingDelivery(outbox_id, f"dlv-{outbox_id}", endpoint, session, seq, body)


class Transport:
    """Answers by body: ``answers[body]`` in turn, then 200; records every POST."""

    def __init__(self) -> None:
        self.answers: dict[bytes, list[AttemptResult]] = {}
        self.sent: list[str] = []
        self.gate: asyncio.Event | None = None  # when set, POSTs wait for it

    async def post(
        self, target: WebhookTarget, body: bytes, headers: dict[str, str]
    ) -> AttemptResult:
        self.sent.append(body.decode())
        if self.gate is not None:
            await self.gate.wait()
        queue = self.answers.get(body)
        if queue:
            return queue.pop(0)
        return AttemptResult(200, 1.0)

    async def close(self) -> None:
        pass


async def resolve(endpoint_id: str) -> WebhookTarget | None:
    return WebhookTarget(f"http://{endpoint_id}.test/hook")


GONE = AttemptResult(410, 1.0, error="HTTP 410")


@pytest.fixture
def parts() -> tuple[Transport, RecordingLedger, list[tuple[str, str]]]:
    return Transport(), RecordingLedger(), []


def make(
    transport: Transport,
    ledger: RecordingLedger,
    gone_calls: list[tuple[str, str]],
    schedule: tuple[float, ...] = (0.001, 0.001),
    max_per_endpoint: int = 64,
) -> Dispatcher:
    async def on_gone(endpoint_id: str, reason: str) -> None:
        gone_calls.append((endpoint_id, reason))

    return Dispatcher(
        transport,
        resolve,
        ledger,
        RetryPolicy(schedule, jitter=0.0),
        on_gone=on_gone,
        max_per_endpoint=max_per_endpoint,
    )


async def test_410_fails_that_output_disables_the_endpoint_and_holds_the_rest(
    parts: tuple[Transport, RecordingLedger, list[tuple[str, str]]],
) -> None:
    """After a 410 the output is failed with a clear error (no retry), on_gone is told once,
    the endpoint's later outputs (same and other sessions) are not attempted and let go of,
    and another endpoint's outputs are delivered as usual."""
    transport, ledger, gone = parts
    first = item(1, "s1")
    transport.answers[first.body] = [GONE]
    d = make(transport, ledger, gone, max_per_endpoint=1)
    await d.start()
    with capture_logs() as logs:
        d.submit([first, item(2, "s1"), item(1, "s2"), item(1, "x", "e2"), item(2, "x", "e2")])
        await d.run_until_idle(timeout=2)
    try:
        assert [s for s in transport.sent if s.startswith("e1/")] == ["e1/s1/1"]
        assert sorted(s for s in transport.sent if s.startswith("e2/")) == ["e2/x/1", "e2/x/2"]
        (failed,) = ledger.of_kind("failed")
        assert failed.item == first
        assert failed.attempt.status == 410
        assert failed.attempt.error == GONE_ERROR
        assert ledger.of_kind("retry_later") == []
        assert [o.item.endpoint_id for o in ledger.of_kind("delivered")] == ["e2", "e2"]
        assert len(gone) == 1
        assert gone[0][0] == "e1"
        assert "410 Gone" in gone[0][1]
        assert "e1" in d.disabled_endpoints
        assert d.held == 0
        disabled_logs = [e for e in logs if e["event"] == "endpoint delivery disabled"]
        assert [(e["endpoint_id"], e["log_level"]) for e in disabled_logs] == [("e1", "warning")]
    finally:
        await d.stop()


async def test_a_disabled_endpoint_takes_nothing_until_enabled_then_delivers_in_order(
    parts: tuple[Transport, RecordingLedger, list[tuple[str, str]]],
) -> None:
    """Submissions for a switched-off endpoint are ignored (they stay owed in storage);
    once enabled, submitting them again delivers them in seq order."""
    transport, ledger, gone = parts
    d = make(transport, ledger, gone)
    await d.start()
    try:
        d.disable_endpoint("e1", "paused")
        items = [item(3), item(1), item(2)]
        d.submit(items)
        await d.run_until_idle(timeout=1)
        assert transport.sent == []
        assert d.held == 0
        assert d.enable_endpoint("e1") is True
        assert d.enable_endpoint("e1") is False
        d.submit(items)
        await d.run_until_idle(timeout=2)
        assert transport.sent == ["e1/s1/1", "e1/s1/2", "e1/s1/3"]
    finally:
        await d.stop()


async def test_disabling_lets_go_of_a_lane_parked_for_a_retry(
    parts: tuple[Transport, RecordingLedger, list[tuple[str, str]]],
) -> None:
    """A lane waiting a minute for its retry is let go of at once when its endpoint is
    switched off: the dispatcher is idle and holds nothing, and nothing more is sent."""
    transport, ledger, gone = parts
    head = item(1)
    transport.answers[head.body] = [AttemptResult(500, 1.0, error="HTTP 500")]
    d = make(transport, ledger, gone, schedule=(60.0,))
    await d.start()
    try:
        d.submit([head, item(2)])
        await d.run_until_idle(timeout=2, include_scheduled=False)
        assert d.held == 2
        d.disable_endpoint("e1", "paused")
        await d.run_until_idle(timeout=1)
        assert d.held == 0
        assert transport.sent == ["e1/s1/1"]
    finally:
        await d.stop()


async def test_endpoint_switched_off_while_waiting_for_a_slot_is_not_attempted(
    parts: tuple[Transport, RecordingLedger, list[tuple[str, str]]],
) -> None:
    """With one slot per endpoint, a lane queued behind a POST in flight does not send once
    the endpoint was switched off meanwhile."""
    transport, ledger, gone = parts
    transport.gate = asyncio.Event()
    d = make(transport, ledger, gone, max_per_endpoint=1)
    await d.start()
    try:
        d.submit([item(1, "a"), item(1, "b")])
        await asyncio.sleep(0.01)  # let "a" take the slot; "b" waits for it
        assert transport.sent == ["e1/a/1"]
        d.disable_endpoint("e1", "paused")
        transport.gate.set()
        await d.run_until_idle(timeout=2)
        assert transport.sent == ["e1/a/1"]
        assert d.held == 0
    finally:
        await d.stop()


async def test_submit_fresh_skips_what_was_settled_while_reading(
    parts: tuple[Transport, RecordingLedger, list[tuple[str, str]]],
) -> None:
    """An outbox read that saw an item as pending, while that item was being delivered,
    must not hand it over again: it would be sent twice. New items are taken."""
    transport, ledger, gone = parts
    d = make(transport, ledger, gone)
    await d.start()
    try:
        inflight, fresh = item(1, "a"), item(1, "b")
        d.submit([inflight])

        async def read() -> list[PendingDelivery]:
            await ledger.wait_for("delivered", 1)  # settled while the "read" runs
            await asyncio.sleep(0)
            return [inflight, fresh]

        async with asyncio.timeout(2):
            taken = await d.submit_fresh(read)
        await d.run_until_idle(timeout=2)
        assert taken == 1
        assert transport.sent == ["e1/a/1", "e1/b/1"]
    finally:
        await d.stop()


async def test_overlapping_reads_each_skip_what_settled_while_they_ran(
    parts: tuple[Transport, RecordingLedger, list[tuple[str, str]]],
) -> None:
    """Two outbox reads overlap and the later one ends first, while both have seen the
    same settlements (none). An item that settles afterwards, and that the earlier read
    returns as pending, is still not sent again; once both reads are over nothing of them
    is kept (a read that outlived its bookkeeping used to keep collecting every settled
    id for the life of the process)."""
    transport, ledger, gone = parts
    d = make(transport, ledger, gone)
    await d.start()
    try:
        early_may_return = asyncio.Event()
        late_may_return = asyncio.Event()
        inflight = item(1, "a")

        async def early_read() -> list[PendingDelivery]:
            await early_may_return.wait()
            return [inflight]

        async def late_read() -> list[PendingDelivery]:
            await late_may_return.wait()
            return []

        async with asyncio.timeout(2):
            early = asyncio.create_task(d.submit_fresh(early_read))
            late = asyncio.create_task(d.submit_fresh(late_read))
            await asyncio.sleep(0)
            late_may_return.set()
            assert await late == 0
            d.submit([inflight])  # delivered and settled while the early read still runs
            await ledger.wait_for("delivered", 1)
            early_may_return.set()
            assert await early == 0
        await d.run_until_idle(timeout=2)
        assert transport.sent == ["e1/a/1"]
        assert d.reads_remembered == 0
    finally:
        await d.stop()


async def test_a_read_does_not_send_what_follows_a_head_let_go_while_it_ran(
    parts: tuple[Transport, RecordingLedger, list[tuple[str, str]]],
) -> None:
    """A read sees a session's head and the output behind it as due. While the read runs,
    the head's attempt fails and its lane lets it go to the outbox (its retry is far off).
    The output behind it, returned by that read, must not be sent: it would overtake the
    head. It stays for a later read, which finds the head first."""
    transport, ledger, _gone = parts
    d = Dispatcher(
        transport,
        resolve,
        ledger,
        RetryPolicy((60.0,), jitter=0.0),
        on_gone=None,
        park_limit=1.0,
    )
    await d.start()
    try:
        head, behind = item(1, "a"), item(2, "a")
        transport.answers[head.body] = [AttemptResult(500, 1.0, error="HTTP 500")]
        may_return = asyncio.Event()

        async def read() -> list[PendingDelivery]:
            await may_return.wait()
            return [head, behind]  # as read before the head's attempt failed

        async with asyncio.timeout(2):
            reading = asyncio.create_task(d.submit_fresh(read))
            await asyncio.sleep(0)
            d.submit([head])
            await ledger.wait_for("retry_later", 1)
            await d.run_until_idle(timeout=1)  # the lane let the head go
            assert not d.holds(head.outbox_id)
            may_return.set()
            assert await reading == 0
        await d.run_until_idle(timeout=1)
        assert transport.sent == ["e1/a/1"]
    finally:
        await d.stop()


class StoredSwitches:
    """The outbox side of a sweep: no pending outputs, and the stored switches as given."""

    def __init__(self) -> None:
        self.disabled: dict[str, str] = {}

    async def disabled_endpoints(self) -> dict[str, str]:
        return dict(self.disabled)

    async def endpoints_pending(self) -> dict[str, float]:
        return {}


async def test_a_sweep_while_a_410_is_being_stored_does_not_switch_the_endpoint_back_on(
    parts: tuple[Transport, RecordingLedger, list[tuple[str, str]]],
) -> None:
    """A sweep that reads the stored switches after the 410 switched the endpoint off in
    memory, but before that switch is committed, reads it as on: it must leave the
    endpoint off rather than switch it on again, and the next sweep, after the commit,
    finds it off in storage too."""
    transport, ledger, _calls = parts
    stored = StoredSwitches()
    committing = asyncio.Event()

    async def on_gone(endpoint_id: str, reason: str) -> None:
        await committing.wait()  # the write is queued behind others
        stored.disabled[endpoint_id] = reason

    dispatcher = Dispatcher(
        transport, resolve, ledger, RetryPolicy((0.001,), jitter=0.0), on_gone=on_gone
    )
    control = DeliveryControl(stored, Metrics(), sweep_seconds=0)  # type: ignore[arg-type]
    control.attach(dispatcher)
    await dispatcher.start()
    try:
        gone = item(1)
        transport.answers[gone.body] = [GONE]
        dispatcher.submit([gone])
        for _ in range(100):
            if "e1" in dispatcher.disabled_endpoints:
                break
            await asyncio.sleep(0.001)
        assert dispatcher.switches_storing == 1

        await control.sweep_once()
        assert "e1" in dispatcher.disabled_endpoints

        committing.set()
        await dispatcher.run_until_idle(timeout=2)
        assert dispatcher.switches_storing == 0
        await control.sweep_once()
        assert "e1" in dispatcher.disabled_endpoints
        held = item(2)
        dispatcher.submit([held])
        await dispatcher.run_until_idle(timeout=2)
        assert held.body.decode() not in transport.sent
    finally:
        await dispatcher.stop()
