"""Standard Webhooks signatures, checked against the reference ``standardwebhooks`` package."""

from __future__ import annotations

import base64
import itertools
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from flowhook.delivery.dispatcher import Dispatcher
from flowhook.delivery.retry import RetryPolicy
from flowhook.delivery.signing import (
    new_signing_secret,
    secret_key,
    sign,
    signature_headers,
    verify,
)
from flowhook.delivery.testing import RecordingLedger
from flowhook.delivery.types import AttemptResult, PendingDelivery, WebhookTarget

BODY = b'{"text":"Hi","data":{}}'


def test_new_secrets_are_whsec_base64_of_32_random_bytes() -> None:
    """Each secret is 'whsec_' + base64 of 32 bytes, and no two are the same."""
    a, b = new_signing_secret(), new_signing_secret()
    assert a.startswith("whsec_")
    assert a != b
    assert len(base64.b64decode(a.removeprefix("whsec_"))) == 32
    assert len(secret_key(a)) == 32


def test_signature_is_accepted_by_the_standardwebhooks_package() -> None:
    """The headers we build verify with the reference implementation."""
    secret = new_signing_secret()
    now = time.time()
    headers = {"webhook-id": "msg_1", **signature_headers([secret], "msg_1", BODY, now)}
    wh = Webhook(secret)
    assert wh.verify(BODY, headers) == {"text": "Hi", "data": {}}
    headers["webhook-signature"] = sign(new_signing_secret(), "msg_1", int(now), BODY)
    with pytest.raises(WebhookVerificationError):
        wh.verify(BODY, headers)


def test_two_secrets_give_two_signatures_each_verifiable() -> None:
    """During a rotation both secrets sign: 'v1,<a> v1,<b>', and each secret verifies."""
    new, old = new_signing_secret(), new_signing_secret()
    headers = {"webhook-id": "msg_2", **signature_headers([new, old], "msg_2", BODY, 1000)}
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert all(p.startswith("v1,") for p in headers["webhook-signature"].split(" "))
    assert verify(new, headers, BODY, now=1000)
    assert verify(old, headers, BODY, now=1000)
    assert not verify(new_signing_secret(), headers, BODY, now=1000)


def test_verify_refuses_stale_timestamps_and_changed_bodies() -> None:
    """A signature older than the tolerance, or over another body, does not verify."""
    secret = new_signing_secret()
    headers = {"webhook-id": "m", **signature_headers([secret], "m", BODY, 1000)}
    assert verify(secret, headers, BODY, now=1000 + 299)
    assert not verify(secret, headers, BODY, now=1000 + 301)
    assert not verify(secret, headers, BODY + b" ", now=1000)
    assert not verify(secret, {"webhook-id": "m"}, BODY, now=1000)


def test_no_secret_means_no_signature_headers() -> None:
    """Endpoints without signing get neither webhook-timestamp nor webhook-signature."""
    assert signature_headers([], "m", BODY, 1000) == {}


class _Transport:
    def __init__(self, answers: list[int]) -> None:
        self.answers = answers
        self.sent: list[dict[str, str]] = []

    async def post(
        self, target: WebhookTarget, body: bytes, headers: dict[str, str]
    ) -> AttemptResult:
        self.sent.append(dict(headers))
        status = self.answers.pop(0)
        return AttemptResult(status, 1.0, error=None if status == 200 else f"HTTP {status}")

    async def close(self) -> None:
        pass


async def test_dispatcher_signs_every_attempt_afresh() -> None:
    """Each attempt carries webhook-id (stable) and a timestamp/signature of that attempt:
    a retry is re-signed with its own time, so receivers' replay windows accept it."""
    secret = new_signing_secret()
    ticks = itertools.count(1_700_000_000, 42)
    transport = _Transport([500, 200])

    async def resolve(endpoint_id: str) -> WebhookTarget:
        return WebhookTarget("http://e.test/", signing_secrets=(secret,))

    dispatcher = Dispatcher(
        transport,
        resolve,
        RecordingLedger(),
        RetryPolicy([0.0], jitter=0),
        clock=lambda: float(next(ticks)),
    )
    await dispatcher.start()
    dispatcher.submit([PendingDelivery(1, "msg_abc", "e", "s", 1, BODY)])
    await dispatcher.run_until_idle(timeout=5)
    await dispatcher.stop()
    first, second = transport.sent
    assert first["webhook-id"] == second["webhook-id"] == "msg_abc"
    assert first["webhook-timestamp"] == "1700000000"
    assert int(second["webhook-timestamp"]) > 1700000000
    for headers in transport.sent:
        assert verify(secret, headers, BODY, now=int(headers["webhook-timestamp"]))
    assert "whsec" not in repr(WebhookTarget("http://e.test/", "u", "pw", (secret,)))
