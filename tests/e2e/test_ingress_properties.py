"""Whatever the ingress accepts can be processed and written back.

A property-based test throws arbitrary JSON (any nesting, any numbers including NaN,
infinities and integers beyond 64 bits, any strings including control characters) at
the real ingress: every answer is a 4xx naming the problem, or a 202 whose message then
reaches a final state (done or failed). Never a 5xx.
"""

from __future__ import annotations

import asyncio
import json
import math
import urllib.error
import urllib.request
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowhook.storage.message_log import MessageLog
from tests.support.receiver import Receiver
from tests.support.server import RunningServer

numbers = (
    st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([2**63, 2**64 - 1, 2**64, -(2**63) - 1, 1e308, math.inf, -math.inf])
)
texts = st.text() | st.sampled_from(["", " ", "\x00", "\x1b[2J", "\u2028", "a" * 300])
scalars = st.none() | st.booleans() | numbers | texts
documents = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=30,
)


@st.composite
def deep(draw: st.DrawFn) -> Any:
    """A value nested 1 to 1100 levels (around every limit: ours, the writer's, orjson's)."""
    value: Any = draw(scalars)
    for _ in range(draw(st.integers(min_value=1, max_value=1100))):
        value = [value] if draw(st.booleans()) else {"k": value}
    return value


ids = texts | st.just("user-1") | numbers | st.none()
anything = (
    st.fixed_dictionaries(
        {},
        optional={
            "userId": ids,
            "sessionId": ids | st.sampled_from(["s1", "s2"]),
            "text": texts | numbers | st.none(),
            "data": documents | deep() | st.dictionaries(texts, deep(), max_size=2),
            "extra": documents,
        },
    )
    | documents
)
# Well-formed ids, so that most bodies get as far as their content.
plausible = st.fixed_dictionaries(
    {
        "userId": st.sampled_from(["u1", "u2"]) | texts,
        "sessionId": st.sampled_from(["s1", "s2"]),
        "text": st.text(min_size=1),
    },
    optional={"data": st.dictionaries(texts, documents | deep(), max_size=3)},
)
bodies = st.one_of(plausible, anything)


def encode(body: Any) -> bytes:
    try:
        # stdlib: writes NaN, Infinity and any integer, as hostile clients do
        return json.dumps(body, allow_nan=True).encode("utf-8", "surrogatepass")
    except RecursionError:
        return b"[" * 5000


def post(url: str, raw: bytes) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(  # noqa: S310 - the test's own loopback server
        url, data=raw, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310 - loopback
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


async def test_arbitrary_json_gets_a_4xx_or_reaches_a_final_state(
    server: RunningServer, receiver: Receiver
) -> None:
    """Every body: 4xx with an error naming it, or 202 and later done or failed."""
    ep = await server.create_endpoint(name="prop", flow="echo", webhookUrl=receiver.url)
    accepted: list[str] = []
    statuses: set[int] = set()

    @settings(
        max_examples=120,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(bodies)
    def throw(body: Any) -> None:
        status, answer = post(ep["endpointUrl"], encode(body))
        statuses.add(status)
        assert status == 202 or 400 <= status < 500, (status, answer)
        if status == 202:
            accepted.append(answer["traceId"])
        else:
            assert answer["error"]["message"], answer

    # In a thread: the server runs on this test's event loop meanwhile.
    await asyncio.to_thread(throw)
    assert 202 in statuses
    assert 400 in statuses
    await server.services.run_until_idle(60)
    records = await MessageLog(server.services.store).page(
        ep["id"], status=None, session_id=None, before_id=None, limit=10_000
    )
    states = {r.trace_id: r.status for r in records}
    assert set(accepted) <= set(states)
    assert {states[t] for t in accepted} <= {"done", "failed"}
