"""One outbound HTTP policy for every call that leaves the process.

Webhook deliveries and handover events (``delivery.transport``), the ``http`` and
``llm`` flow nodes, NLU connectors and translation providers all connect through
the SSRF guard of ``flowhook.delivery.ssrf``: DNS answers are filtered, the exact
address of every socket is checked right before ``connect()`` (so IP literals, DNS
rebinding and redirects to an internal address are all refused), and proxies from
the environment are ignored. What differs per feature is only its allowlist, a
deliberate setting for an operator who needs that feature to reach an internal
service (``FEATURE_ALLOWLISTS``; docs/security.md).

``LazySession`` is the pooled aiohttp client session of one feature, created lazily
inside the running loop because aiohttp binds a session to the loop that creates
it. Its pool is bounded, so no feature can take every file descriptor.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from flowhook.delivery.ssrf import AddressGuard, BlockedAddressError, GuardedResolver

# feature -> the setting that holds its allowlist (env FLOWHOOK_<NAME upper>).
FEATURE_ALLOWLISTS: dict[str, str] = {
    "webhook": "webhook_allow_cidrs",  # deliveries and handover events
    "http node": "http_node_allow_cidrs",
    "llm node": "llm_allow_cidrs",
    "translation": "translation_allow_cidrs",
    "nlu connector": "nlu_allow_cidrs",
}


def setting_label(feature: str) -> str:
    name = FEATURE_ALLOWLISTS[feature]
    return f"{name} (env FLOWHOOK_{name.upper()})"


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    """Where one feature may connect: anywhere public, plus its allowlist."""

    feature: str = "http node"
    allow_cidrs: tuple[str, ...] = field(default_factory=tuple)
    allow_public: bool = True  # setting outbound_public

    def guard(self) -> AddressGuard:
        return AddressGuard(
            self.allow_cidrs, setting=setting_label(self.feature), allow_public=self.allow_public
        )

    @classmethod
    def from_settings(cls, feature: str, settings: Any) -> OutboundPolicy:
        """The policy of ``feature`` from a ``Settings`` object (missing setting: none)."""
        cidrs: Iterable[str] = getattr(settings, FEATURE_ALLOWLISTS[feature], None) or ()
        return cls(feature, tuple(cidrs), getattr(settings, "outbound_public", True))


# Bounds of each feature's pool: inbound pressure (many turns calling out at once)
# waits for a pooled connection instead of opening sockets without end.
DEFAULT_LIMIT = 64
DEFAULT_LIMIT_PER_HOST = 16
KEEPALIVE_SECONDS = 15.0
DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=10)


def guarded_connector(
    policy: OutboundPolicy,
    *,
    limit: int = DEFAULT_LIMIT,
    limit_per_host: int = DEFAULT_LIMIT_PER_HOST,
) -> aiohttp.TCPConnector:
    """A bounded connection pool whose every connection passes ``policy``'s guard."""
    guard = policy.guard()
    return aiohttp.TCPConnector(
        limit=limit,
        limit_per_host=limit_per_host,
        keepalive_timeout=KEEPALIVE_SECONDS,
        resolver=GuardedResolver(guard),
        socket_factory=guard.socket_factory,
    )


class LazySession:
    """One feature's pooled, guarded client session, created on first use."""

    def __init__(
        self,
        user_agent: str = "flowhook",
        *,
        limit: int = DEFAULT_LIMIT,
        limit_per_host: int = DEFAULT_LIMIT_PER_HOST,
        policy: OutboundPolicy | None = None,
    ) -> None:
        self._user_agent = user_agent
        self._limit = limit
        self._limit_per_host = limit_per_host
        # No policy given: the strictest one (no allowlist), never an unguarded client.
        self.policy = policy or OutboundPolicy()
        self._session: aiohttp.ClientSession | None = None

    def get(self) -> aiohttp.ClientSession:
        session = self._session
        if session is None or session.closed:
            session = aiohttp.ClientSession(
                connector=guarded_connector(
                    self.policy, limit=self._limit, limit_per_host=self._limit_per_host
                ),
                headers={"User-Agent": self._user_agent},
                timeout=DEFAULT_TIMEOUT,
                trust_env=False,  # a proxy from the environment would bypass the guard
            )
            self._session = session
        return session

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()


def guard_refusal(exc: BaseException) -> str | None:
    """For a failed call refused by the SSRF guard: a message naming the allowlist
    setting (and no host or URL, so it is safe to log); None for any other failure."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, BlockedAddressError):
            return f"refused by the SSRF guard; allow it with the {seen.setting} setting"
        inner = getattr(seen, "os_error", None)
        seen = inner if isinstance(inner, BaseException) else (seen.__cause__ or seen.__context__)
    return None
