"""Dispatcher: ordering, retries, give-up, parallelism and isolation, over a fake transport."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from structlog.testing import capture_logs

from flowhook.delivery.dispatcher import Dispatcher
from flowhook.delivery.retry import RetryPolicy
from flowhook.delivery.testing import RecordingLedger
from flowhook.delivery.types import AttemptResult, PendingDelivery, WebhookTarget

OK = AttemptResult(status=200, duration_ms=1.0)
_ids = itertools.count(1)


def item(
    seq: int,
    session: str = "s1",
    endpoint: str = "e1",
    *,
    attempts: int = 0,
    not_before: float = 0.0,
) -> PendingDelivery:
    outbox_id = next(_ids)
    body = f"{endpoint}/{session}/{seq}".encode()
    return PendingDelivery(
        outbox_id, f"dlv-{outbox_id}", endpoint, session, seq, body, attempts, not_before
    )


def fail(status: int | None = 500, error: str = "HTTP 500") -> AttemptResult:
    return AttemptResult(status=status, duration_ms=1.0, error=error)


Responder = Callable[[WebhookTarget, bytes, dict[str, str]], Awaitable[AttemptResult]]


@dataclass
class Call:
    url: str
    body: bytes
    headers: dict[str, str]


@dataclass
class FakeTransport:
    """Records every POST and answers through ``responder`` (200 by default)."""

    responder: Responder | None = None
    calls: list[Call] = field(default_factory=list)
    in_flight: Counter[str] = field(default_factory=Counter)
    max_in_flight: Counter[str] = field(default_factory=Counter)
    closed: bool = False

    async def post(
        self, target: WebhookTarget, body: bytes, headers: dict[str, str]
    ) -> AttemptResult:
        self.calls.append(Call(target.url, body, dict(headers)))
        self.in_flight[target.url] += 1
        self.max_in_flight[target.url] = max(
            self.max_in_flight[target.url], self.in_flight[target.url]
        )
        try:
            if self.responder is None:
                return OK
            return await self.responder(target, body, headers)
        finally:
            self.in_flight[target.url] -= 1

    async def close(self) -> None:
        self.closed = True

    def bodies(self, prefix: str = "") -> list[str]:
        return [c.body.decode() for c in self.calls if c.body.decode().startswith(prefix)]


def scripted(answers: dict[bytes, list[AttemptResult]]) -> Responder:
    """Answer each body from its list in turn, then 200 forever."""

    async def respond(target: WebhookTarget, body: bytes, headers: dict[str, str]) -> AttemptResult:
        queue = answers.get(body)
        return queue.pop(0) if queue else OK

    return respond


async def resolve(endpoint_id: str) -> WebhookTarget | None:
    if endpoint_id.startswith("gone"):
        return None
    return WebhookTarget(url=f"http://{endpoint_id}.test/hook", user="bot", password="hunter2")


@dataclass
class Harness:
    transport: FakeTransport
    ledger: RecordingLedger
    make: Callable[..., Dispatcher]


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    transport = FakeTransport()
    ledger = RecordingLedger()
    made: list[Dispatcher] = []

    def make(
        schedule: tuple[float, ...] = (0.0, 0.0, 0.0), *, jitter: float = 0.0, **kw: object
    ) -> Dispatcher:
        d = Dispatcher(transport, resolve, ledger, RetryPolicy(schedule, jitter=jitter), **kw)  # type: ignore[arg-type]
        made.append(d)
        return d

    yield Harness(transport, ledger, make)
    for d in made:
        await d.stop()


async def test_delivers_each_session_in_seq_order(harness: Harness) -> None:
    """Items submitted out of order go out sorted by seq within their session."""
    d = harness.make()
    d.submit([item(3), item(1), item(2)])
    await d.start()
    await d.run_until_idle(timeout=2)
    assert harness.transport.bodies() == ["e1/s1/1", "e1/s1/2", "e1/s1/3"]
    assert [o.item.seq for o in harness.ledger.of_kind("delivered")] == [1, 2, 3]


async def test_failed_output_blocks_later_outputs_of_its_session_until_it_succeeds(
    harness: Harness,
) -> None:
    """Output n+1 is sent only after n finally succeeded; retries keep the same webhook-id."""
    second = item(2)
    harness.transport.responder = scripted({second.body: [fail(), fail()]})
    d = harness.make(schedule=(0.001, 0.001, 0.001))
    await d.start()
    d.submit([item(1), second, item(3)])
    await d.run_until_idle(timeout=2)

    assert harness.transport.bodies() == ["e1/s1/1", "e1/s1/2", "e1/s1/2", "e1/s1/2", "e1/s1/3"]
    ids = {c.headers["webhook-id"] for c in harness.transport.calls if c.body == second.body}
    assert ids == {second.delivery_id}
    retries = harness.ledger.of_kind("retry_later")
    assert [(o.item.seq, o.attempts) for o in retries] == [(2, 1), (2, 2)]
    assert [o.item.seq for o in harness.ledger.of_kind("delivered")] == [1, 2, 3]


async def test_waiting_retry_holds_only_its_own_session(harness: Harness) -> None:
    """While a session's head waits for a retry, its later items wait, other sessions don't."""
    head = item(1, "A")
    harness.transport.responder = scripted({head.body: [fail(503)]})
    d = harness.make(schedule=(60.0,), max_per_endpoint=1)
    await d.start()
    d.submit([head, item(2, "A"), item(1, "B"), item(2, "B")])
    await d.run_until_idle(timeout=2, include_scheduled=False)

    assert harness.transport.bodies("e1/A") == ["e1/A/1"]
    assert harness.transport.bodies("e1/B") == ["e1/B/1", "e1/B/2"]
    # The parked retry held no endpoint slot (cap is 1), so B could go at all.
    assert d.held == 2
    with pytest.raises(TimeoutError):
        await d.run_until_idle(timeout=0.05)  # the retry is a minute away


async def test_gives_up_after_the_schedule_and_moves_on(harness: Harness) -> None:
    """After len(schedule)+1 failed attempts the item is failed and the next one is sent."""
    doomed = item(1)
    harness.transport.responder = scripted({doomed.body: [fail()] * 10})
    d = harness.make(schedule=(0.0, 0.0))
    await d.start()
    d.submit([doomed, item(2)])
    await d.run_until_idle(timeout=2)

    assert harness.transport.bodies() == ["e1/s1/1"] * 3 + ["e1/s1/2"]
    (failed,) = harness.ledger.of_kind("failed")
    assert failed.item.seq == 1
    assert failed.attempts == 3
    assert failed.attempt.status == 500
    assert [o.item.seq for o in harness.ledger.of_kind("delivered")] == [2]


async def test_attempts_from_the_outbox_count_towards_the_schedule(harness: Harness) -> None:
    """An item re-claimed after a restart with 2 attempts done has only what is left."""
    resumed = item(1, attempts=2)
    harness.transport.responder = scripted({resumed.body: [fail()] * 10})
    d = harness.make(schedule=(0.0, 0.0))
    await d.start()
    d.submit([resumed])
    await d.run_until_idle(timeout=2)
    assert len(harness.transport.calls) == 1
    assert harness.ledger.of_kind("failed")[0].attempts == 3


async def test_retry_time_comes_from_the_injected_clock(harness: Harness) -> None:
    """not_before = clock() + policy delay, and an item not yet due is not sent early."""
    first = item(1)
    harness.transport.responder = scripted({first.body: [fail()]})
    d = harness.make(schedule=(0.02,), clock=lambda: 1000.0)
    await d.start()
    d.submit([first])
    await d.run_until_idle(timeout=2)
    (retry,) = harness.ledger.of_kind("retry_later")
    assert retry.not_before == pytest.approx(1000.02)
    assert retry.attempts == 1
    assert harness.ledger.of_kind("delivered")[0].item.outbox_id == first.outbox_id

    later = item(2, "other", not_before=1000.05)
    d.submit([later])
    await d.run_until_idle(timeout=2, include_scheduled=False)
    assert "e1/other/2" not in harness.transport.bodies()  # parked, not sent
    await d.run_until_idle(timeout=2)
    assert harness.transport.bodies()[-1] == "e1/other/2"


async def test_sessions_are_delivered_in_parallel(harness: Harness) -> None:
    """N sessions of one endpoint have N POSTs in flight at once (up to the cap)."""
    n = 12
    all_in = asyncio.Event()

    async def gate(target: WebhookTarget, body: bytes, headers: dict[str, str]) -> AttemptResult:
        if harness.transport.in_flight[target.url] >= n:
            all_in.set()
        try:
            await asyncio.wait_for(all_in.wait(), 2)
        except TimeoutError:
            return fail(None, "never saw them all at once")
        return OK

    harness.transport.responder = gate
    d = harness.make(schedule=())
    await d.start()
    d.submit([item(1, f"s{i}") for i in range(n)])
    await d.run_until_idle(timeout=5)
    assert harness.transport.max_in_flight["http://e1.test/hook"] == n
    assert len(harness.ledger.of_kind("delivered")) == n


async def test_hanging_endpoint_uses_only_its_own_slots(harness: Harness) -> None:
    """A never-answering endpoint gets exactly its cap of POSTs; a healthy one delivers all."""
    never = asyncio.Event()

    async def respond(target: WebhookTarget, body: bytes, headers: dict[str, str]) -> AttemptResult:
        if target.url.startswith("http://slow."):
            await never.wait()
        return OK

    harness.transport.responder = respond
    d = harness.make(schedule=(), max_per_endpoint=3)
    await d.start()
    d.submit([item(1, f"s{i}", "slow") for i in range(20)])
    d.submit([item(1, f"s{i}", "fast") for i in range(30)])
    async with asyncio.timeout(5):
        await harness.ledger.wait_for("delivered", 30)

    slow_calls = [c for c in harness.transport.calls if c.url.startswith("http://slow.")]
    assert len(slow_calls) == 3
    assert harness.transport.max_in_flight["http://slow.test/hook"] == 3
    assert {o.item.endpoint_id for o in harness.ledger.outcomes} == {"fast"}


async def test_deleted_endpoint_fails_without_posting(harness: Harness) -> None:
    """When the resolver says the endpoint is gone, items are failed, nothing is sent."""
    d = harness.make()
    await d.start()
    d.submit([item(1, endpoint="gone"), item(2, endpoint="gone")])
    await d.run_until_idle(timeout=2)
    assert harness.transport.calls == []
    failed = harness.ledger.of_kind("failed")
    assert [o.attempt.error for o in failed] == ["endpoint deleted", "endpoint deleted"]
    assert [o.attempts for o in failed] == [0, 0]


async def test_resolver_error_is_a_failed_attempt_that_is_retried(harness: Harness) -> None:
    """A storage hiccup while looking up the target is retried, not fatal."""
    calls = 0

    async def flaky(endpoint_id: str) -> WebhookTarget | None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("db down")
        return WebhookTarget("http://e1.test/hook")

    d = Dispatcher(harness.transport, flaky, harness.ledger, RetryPolicy([0.0], jitter=0))
    await d.start()
    d.submit([item(1)])
    await d.run_until_idle(timeout=2)
    await d.stop()
    (retry,) = harness.ledger.of_kind("retry_later")
    assert retry.attempt.error == "target lookup failed: ConnectionError"
    assert len(harness.ledger.of_kind("delivered")) == 1


async def test_ledger_errors_are_logged_and_retried_before_the_session_moves_on(
    harness: Harness,
) -> None:
    """A ledger that raises does not stop the dispatcher: the outcome is recorded again
    (not the POST repeated) until it is taken, the session's next output waits for that,
    other sessions go on, and the log shows the first line of the error only."""
    failures = iter([True, True])
    recorded: list[int] = []

    class FlakyLedger(RecordingLedger):
        async def delivered(self, item: PendingDelivery, attempt: AttemptResult) -> None:
            if item.seq == 1 and item.session_id == "s1" and next(failures, False):
                raise RuntimeError("disk full\n[parameters: secret body]")
            recorded.append(item.outbox_id)

    d = Dispatcher(harness.transport, resolve, FlakyLedger(), RetryPolicy([]))
    await d.start()
    first, second, other = item(1), item(2), item(1, "other")
    with capture_logs() as logs:
        d.submit([first, second, other])
        await d.run_until_idle(timeout=5)
    await d.stop()
    assert len(harness.transport.calls) == 3  # no POST repeated
    assert recorded.index(first.outbox_id) < recorded.index(second.outbox_id)
    assert sorted(recorded) == sorted([first.outbox_id, second.outbox_id, other.outbox_id])
    errors = [e for e in logs if e["event"] == "delivery ledger error"]
    assert len(errors) == 2
    assert errors[0]["error"] == "disk full"  # first line only: no bound parameters


async def test_logs_carry_ids_but_never_body_or_credentials(harness: Harness) -> None:
    """Failure logs name endpoint, delivery, status, error; no body text, no password."""
    secret_item = PendingDelivery(999_001, "dlv-x", "e1", "s1", 1, b'{"text": "my card is 4111"}')
    harness.transport.responder = scripted({secret_item.body: [fail(401, "HTTP 401")] * 5})
    d = harness.make(schedule=(0.0,))
    await d.start()
    with capture_logs() as logs:
        d.submit([secret_item])
        await d.run_until_idle(timeout=2)
    attempts = [e for e in logs if e["event"] == "delivery attempt failed"]
    assert len(attempts) == 2
    assert attempts[0]["endpoint_id"] == "e1"
    assert attempts[0]["delivery_id"] == "dlv-x"
    assert attempts[0]["status"] == 401
    dump = repr(logs)
    assert "4111" not in dump
    assert "hunter2" not in dump


async def test_same_outbox_item_submitted_twice_is_sent_once(harness: Harness) -> None:
    """Re-submitting an item the dispatcher still holds (an outbox re-poll) is a no-op."""
    one = item(1)
    harness.transport.responder = scripted({one.body: [fail()]})
    d = harness.make(schedule=(0.01,))
    await d.start()
    d.submit([one])
    await d.run_until_idle(timeout=2, include_scheduled=False)
    d.submit([one, one])  # while its retry is parked
    await d.run_until_idle(timeout=2)
    assert harness.transport.bodies() == ["e1/s1/1", "e1/s1/1"]
    assert len(harness.ledger.of_kind("delivered")) == 1


async def test_lower_seq_overtakes_a_parked_head(harness: Harness) -> None:
    """An earlier output that arrives while a later one waits for its retry goes first."""
    later = item(5, not_before=10**12)  # parked "forever"
    d = harness.make()
    await d.start()
    d.submit([later])
    await d.run_until_idle(timeout=2, include_scheduled=False)
    d.submit([item(3)])
    await d.run_until_idle(timeout=2, include_scheduled=False)
    assert harness.transport.bodies() == ["e1/s1/3"]
    assert d.held == 1


async def test_header_factory_adds_headers_next_to_webhook_id(harness: Harness) -> None:
    """Signing hook: its headers are sent with every attempt, alongside webhook-id."""
    d = harness.make(header_factory=lambda it: {"webhook-signature": f"sig-{it.seq}"})
    await d.start()
    one = item(7)
    d.submit([one])
    await d.run_until_idle(timeout=2)
    assert harness.transport.calls[0].headers == {
        "webhook-id": one.delivery_id,
        "webhook-signature": "sig-7",
    }


async def test_stop_cancels_in_flight_work_and_closes_transport(harness: Harness) -> None:
    """stop() returns once its grace is over even with a hanging POST (cancelled, no
    outcome), wakes idle waiters, closes the transport."""
    never = asyncio.Event()

    async def hang(target: WebhookTarget, body: bytes, headers: dict[str, str]) -> AttemptResult:
        await never.wait()
        return OK

    harness.transport.responder = hang
    d = harness.make()
    await d.start()
    d.submit([item(1), item(1, "b", not_before=10**12)])
    waiter = asyncio.create_task(d.run_until_idle())
    await asyncio.sleep(0)
    async with asyncio.timeout(2):
        await d.stop(grace=0.2)
        await waiter
    assert harness.transport.closed
    assert d.held == 0
    assert harness.ledger.outcomes == []
    with pytest.raises(RuntimeError):
        d.submit([item(2)])
