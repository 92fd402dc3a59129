"""Both delivery transports, for tests that prove behaviour each must have."""

from __future__ import annotations

from collections.abc import Callable

from flowhook.delivery.lean_transport import LeanTransport
from flowhook.delivery.transport import AiohttpTransport
from flowhook.delivery.types import Transport

# Each takes (connect_timeout, total_timeout, *, keepalive_timeout, body_excerpt_bytes,
# guard, ssl_context).
MakeTransport = Callable[..., Transport]

TRANSPORTS: dict[str, MakeTransport] = {
    "aiohttp": AiohttpTransport,
    "lean": LeanTransport,
}
