"""No input a client can send makes the ingress answer 500."""

from __future__ import annotations

import json
import random
from typing import Any

from tests.support.receiver import Receiver
from tests.support.server import RunningServer

ATOMS: list[Any] = [
    None,
    True,
    0,
    -1,
    1.5,
    10**30,
    "",
    " ",
    "x",
    "\u0000",
    "😀",
    "\ud7ff",
    [],
    {},
    [1, {"a": None}],
]
KEYS = ["userId", "sessionId", "text", "data", "USERID", "", "__proto__", "constructor"]


def random_body(rng: random.Random) -> bytes:
    kind = rng.random()
    if kind < 0.15:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 64)))
    doc: dict[str, Any] = {}
    for key in rng.sample(KEYS, rng.randrange(0, len(KEYS))):
        doc[key] = rng.choice(ATOMS) if rng.random() < 0.7 else rng.choice(["u", "s", "hello"])
    raw = json.dumps(doc).encode()  # stdlib: it also writes integers beyond 64 bits
    if kind < 0.3 and raw:
        cut = rng.randrange(len(raw))
        raw = raw[:cut]
    return raw


async def test_random_bodies_never_cause_a_server_error(
    server: RunningServer, receiver: Receiver
) -> None:
    """400 random, truncated and odd bodies all get 202, 400 or 413 with a JSON body, never 5xx."""
    ep = await server.create_endpoint(name="fuzz", flow="echo", webhookUrl=receiver.url)
    rng = random.Random(20261123)
    seen: set[int] = set()
    for _ in range(400):
        async with server.http.post(ep["endpointUrl"], data=random_body(rng)) as resp:
            assert resp.status in (202, 400, 413), await resp.text()
            body = await resp.json(content_type=None)
            assert ("traceId" in body) if resp.status == 202 else ("error" in body)
            seen.add(resp.status)
    assert seen == {202, 400}
    await server.services.run_until_idle()


async def test_odd_tokens_keys_and_headers_are_handled(
    server: RunningServer, receiver: Receiver
) -> None:
    """Odd URL tokens and API key headers get 401/404 JSON answers, never 5xx."""
    ep = await server.create_endpoint(
        name="odd", flow="echo", webhookUrl=receiver.url, authMethod="apiKey"
    )
    body = {"userId": "u", "sessionId": "s", "text": "x"}
    for token in ["%00", "a" * 3000, "..%2f..%2f", "%E2%98%83", "' OR 1=1 --"]:
        async with server.http.post(f"{server.base_url}/endpoint/{token}", json=body) as resp:
            assert resp.status == 404
    for key in ["", " ", "fhk_" + "a" * 5000, "\u00ff\u00fe"]:
        status, answer = await server.post_message(ep, body, key=key)
        assert status == 401
        assert answer["error"]["code"] == "unauthorized"
