"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

Each delivery to an endpoint with a signing secret carries

- ``webhook-id``: the delivery id, stable across retries;
- ``webhook-timestamp``: unix seconds of *this* attempt (retries are signed afresh,
  so receivers can reject stale replays with a tolerance window);
- ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``,
  one per active secret, separated by spaces (during a rotation's grace period
  both the new and the previous secret sign).

Secrets look like ``whsec_<base64 of 32 random bytes>``; the HMAC key is the
decoded bytes after the prefix.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
SECRET_BYTES = 32
DEFAULT_TOLERANCE = 300.0


def new_signing_secret() -> str:
    """A fresh endpoint signing secret: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret; raises ``ValueError`` if it is malformed."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("malformed signing secret (expected whsec_<base64>)") from None
    if not key:
        raise ValueError("malformed signing secret (empty)")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature of ``{msg_id}.{timestamp}.{body}``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_headers(
    secrets_: Iterable[str], msg_id: str, body: bytes, now: float
) -> dict[str, str]:
    """``webhook-timestamp`` and ``webhook-signature`` for one attempt (empty if no secret)."""
    active = list(secrets_)
    if not active:
        return {}
    timestamp = int(now)
    return {
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(s, msg_id, timestamp, body) for s in active),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    tolerance: float = DEFAULT_TOLERANCE,
) -> bool:
    """True when one of the ``v1`` signatures in ``headers`` is ``secret``'s, in time.

    ``headers`` lookups must be case-insensitive (as aiohttp's and starlette's are).
    """
    msg_id = headers.get("webhook-id")
    stamp = headers.get("webhook-timestamp")
    given = headers.get("webhook-signature")
    if not msg_id or not stamp or not given:
        return False
    try:
        timestamp = int(stamp)
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(secret, msg_id, timestamp, body).encode()
    ok = False
    for candidate in given.split():
        # Compare against every candidate: the time taken does not tell which matched.
        if hmac.compare_digest(candidate.encode(), expected):
            ok = True
    return ok
