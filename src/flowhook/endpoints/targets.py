"""Where each delivery attempt goes: the endpoint's webhook URL and credentials, fresh.

Before each attempt the configuration generation is read (``ensure_fresh``), so a URL,
credentials or signing secrets changed anywhere (admin API, CLI, another process) hold
from the very next attempt. What an attempt needs is then built from the cached
endpoint record: decrypting the secrets and building the target costs more than the
rest of the lookup, so it is done once per stored record and kept while the record is
the cached one. Any change clears the cache, and a reloaded record is a new object, so
a kept target never outlives the record it was built from; a target signed with a
previous secret during a rotation's grace period is kept only until that period ends.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from flowhook.cluster.partitions import HANDOVER_PREFIX
from flowhook.delivery.types import WebhookTarget
from flowhook.endpoints.cache import EndpointCache
from flowhook.endpoints.generation import ConfigGeneration
from flowhook.endpoints.security import EndpointSecurity
from flowhook.storage.records import EndpointRecord

# Endpoints whose targets are kept; past it the memo starts afresh (a bound, not a cache
# policy: it holds one entry per endpoint delivered to).
MAX_KEPT = 100_000


@dataclasses.dataclass(frozen=True, slots=True)
class _Kept:
    record: EndpointRecord  # the record it was built from (compared by identity)
    url: str | None  # the handover URL it was built for; None for the webhook
    until: float  # unix time after which it must be built again
    target: WebhookTarget


class WebhookTargets:
    """The ``TargetResolver`` of the server: endpoint id -> ``WebhookTarget`` or ``None``
    (the endpoint, or its handover provider, no longer exists)."""

    def __init__(
        self,
        generation: ConfigGeneration,
        cache: EndpointCache,
        security: EndpointSecurity,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._generation = generation
        self._cache = cache
        self._security = security
        self._kept: dict[str, _Kept] = {}

    async def __call__(self, endpoint_id: str) -> WebhookTarget | None:
        await self._generation.ensure_fresh()  # a URL or credentials changed anywhere hold now
        if endpoint_id.startswith(HANDOVER_PREFIX):
            # An event for the endpoint's handover provider: its URL, no Basic Auth,
            # signed with the endpoint's signing secret when it has one.
            cached = await self._cache.entry_by_id(endpoint_id.removeprefix(HANDOVER_PREFIX))
            if cached is None or cached.settings.handover_url is None:
                self._kept.pop(endpoint_id, None)
                return None
            return self._target(endpoint_id, cached.record, cached.settings.handover_url)
        rec = await self._cache.by_id(endpoint_id)
        if rec is None:
            self._kept.pop(endpoint_id, None)
            return None
        return self._target(endpoint_id, rec, None)

    def _target(self, key: str, rec: EndpointRecord, url: str | None) -> WebhookTarget:
        now = self._clock()
        kept = self._kept.get(key)
        if kept is not None and kept.record is rec and kept.url == url and now < kept.until:
            return kept.target
        target = self._security.target(rec, now)
        if url is not None:
            target = dataclasses.replace(target, url=url, user=None, password=None)
        if len(self._kept) >= MAX_KEPT:
            self._kept.clear()
        self._kept[key] = _Kept(rec, url, self._security.signing_set_until(rec, now), target)
        return target
