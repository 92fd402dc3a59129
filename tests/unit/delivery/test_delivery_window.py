"""Fair shares of memory and connections between endpoints (``flowhook.delivery.window``)."""

from __future__ import annotations

import asyncio
import random

import pytest

from flowhook.delivery.window import FAILING_AFTER, FORGET_IDLE_AFTER, ConnectionSlots, FairShare


def test_an_endpoint_stops_at_its_own_cap() -> None:
    """Below the global cap an endpoint takes up to its own cap, not one more."""
    share = FairShare(per_endpoint=3, total=100)
    assert [share.take("a") for _ in range(4)] == [True, True, True, False]
    assert share.room("a", 1000) == 0
    assert share.room("b", 1000) == 3


def test_past_the_global_cap_a_newcomer_still_gets_its_fair_share() -> None:
    """Greedy endpoints fill the global cap; an endpoint holding nothing still takes up to
    the cap divided by the endpoints in use, and the greedy ones take no more."""
    share = FairShare(per_endpoint=10, total=10)
    for _ in range(5):
        assert share.take("a")
        assert share.take("b")
    assert not share.take("a")
    assert share.room("c", 1000) == 3  # 10 // 3 users
    assert [share.take("c") for _ in range(4)] == [True, True, True, False]


def test_giving_back_forgets_an_idle_endpoint() -> None:
    """Counts exist only while non-zero: an idle endpoint leaves nothing behind."""
    share = FairShare(per_endpoint=None, total=None)
    share.take("a")
    share.take("a")
    share.give_back("a")
    share.give_back("a")
    share.give_back("a")  # one too many: ignored
    assert share.endpoint_ids() == set()
    assert share.in_use == 0


@pytest.mark.parametrize("seed", range(50))
def test_the_total_never_exceeds_twice_the_global_cap(seed: int) -> None:
    """Whatever the sequence of takes and give-backs over many endpoints (random, seeded,
    mostly takes), the total in use never exceeds twice the global cap and each endpoint
    within its own cap."""
    rng = random.Random(seed)
    share = FairShare(per_endpoint=7, total=16)
    for _ in range(400):
        key = f"e{rng.randrange(60)}"
        if rng.random() < 0.8:
            share.take(key)
        else:
            share.give_back(key)
        assert share.in_use <= 2 * 16
        assert all(share.of(e) <= 7 for e in share.endpoint_ids())


async def test_a_freed_slot_goes_to_the_endpoint_using_the_fewest() -> None:
    """With every connection taken, waiters are admitted as slots free, the endpoint with
    the fewest in use first; an idle pool tracks no endpoint."""
    slots = ConnectionSlots(per_endpoint=4, total=4)
    release = asyncio.Event()
    order: list[str] = []

    async def post(endpoint: str) -> None:
        async with slots.slot(endpoint):
            order.append(endpoint)
            await release.wait()

    busy = [asyncio.create_task(post("hog")) for _ in range(4)]
    await asyncio.sleep(0)
    assert slots.in_use == 4
    hog_more = asyncio.create_task(post("hog"))
    await asyncio.sleep(0)
    # the newcomer is below its fair share (4 // 2): admitted at once
    small = asyncio.create_task(post("small"))
    await asyncio.sleep(0)
    assert order[-1] == "small"
    release.set()
    await asyncio.gather(*busy, hog_more, small)
    assert slots.in_use == 0
    assert slots.endpoint_ids() == set()


async def test_a_cancelled_waiter_leaves_no_trace() -> None:
    """A POST cancelled while waiting for a slot is forgotten; the slot it would have had
    goes to the next waiter."""
    slots = ConnectionSlots(per_endpoint=1, total=None)
    gate = asyncio.Event()

    async def post() -> None:
        async with slots.slot("a"):
            await gate.wait()

    first = asyncio.create_task(post())
    await asyncio.sleep(0)
    second = asyncio.create_task(post())
    third = asyncio.create_task(post())
    await asyncio.sleep(0)
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second
    gate.set()
    await asyncio.gather(first, third)
    assert slots.in_use == 0
    assert slots.endpoint_ids() == set()


async def test_a_failing_endpoint_gets_few_connections_until_an_attempt_succeeds() -> None:
    """After ``FAILING_AFTER`` failed attempts in a row an endpoint takes at most the
    failing cap of connections; another endpoint keeps its full share; one success gives
    the first endpoint its full cap back at once (its waiters are admitted)."""
    slots = ConnectionSlots(per_endpoint=8, total=None, failing_limit=2)
    gate = asyncio.Event()
    running: dict[str, int] = {"bad": 0, "good": 0}

    async def post(endpoint: str) -> None:
        async with slots.slot(endpoint):
            running[endpoint] += 1
            await gate.wait()
            running[endpoint] -= 1

    async with slots.slot("bad"):
        for _ in range(FAILING_AFTER):
            slots.attempted("bad", ok=False)
        assert slots.failing("bad")
        tasks = [asyncio.create_task(post("bad")) for _ in range(6)]
        tasks += [asyncio.create_task(post("good")) for _ in range(6)]
        await asyncio.sleep(0)
        assert running == {"bad": 1, "good": 6}  # 1 + this slot = the cap of 2
        slots.attempted("bad", ok=True)
        await asyncio.sleep(0)
        assert not slots.failing("bad")
        assert running["bad"] == 6
    gate.set()
    await asyncio.gather(*tasks)


async def test_a_success_between_failures_keeps_an_endpoint_healthy() -> None:
    """Failures interleaved with successes (one bad output among good ones) never make
    an endpoint failing: only consecutive failures count."""
    slots = ConnectionSlots(per_endpoint=8, total=None, failing_limit=1)
    async with slots.slot("e"):
        for _ in range(10 * FAILING_AFTER):
            for _ in range(FAILING_AFTER - 1):
                slots.attempted("e", ok=False)
            slots.attempted("e", ok=True)
            assert not slots.failing("e")


async def test_failure_counts_survive_the_pause_between_retries_and_go_when_idle() -> None:
    """An endpoint whose attempts all failed stays failing while nothing of it is in flight
    (its lanes wait for their retries); once it has had nothing in flight or waiting for
    ``FORGET_IDLE_AFTER`` seconds (idle or deleted), nothing is kept of it."""
    now = [0.0]
    slots = ConnectionSlots(per_endpoint=4, total=None, failing_limit=1, clock=lambda: now[0])
    for n in range(100):
        async with slots.slot(f"gone-{n}"):
            for _ in range(FAILING_AFTER):
                slots.attempted(f"gone-{n}", ok=False)
    now[0] += 5.0
    assert all(slots.failing(f"gone-{n}") for n in range(100))
    now[0] += FORGET_IDLE_AFTER
    async with slots.slot("other"):  # any later use of the pool prunes
        pass
    assert not any(slots.failing(f"gone-{n}") for n in range(100))
    assert slots.endpoint_ids() == set()
