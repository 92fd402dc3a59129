"""Accepting a message: find the endpoint, check its key, validate, commit, hand to the runner."""

from __future__ import annotations

import time

import structlog

from flowhook.endpoints.cache import EndpointCache
from flowhook.endpoints.secrets import hash_api_key, is_well_formed_url_token, matches_any
from flowhook.errors import NotFound, Overloaded, Unauthorized
from flowhook.sessions.runner import SessionRunner
from flowhook.storage.records import InboundMessage
from flowhook.storage.store import SqlStore
from flowhook.wire import new_trace_id, parse_inbound

log = structlog.get_logger(__name__)

# last_used_at is bookkeeping, not security: write it at most this often per key.
KEY_TOUCH_INTERVAL = 60.0


class Inbox:
    def __init__(
        self,
        store: SqlStore,
        endpoints: EndpointCache,
        runner: SessionRunner,
        *,
        max_backlog: int = 100_000,
    ) -> None:
        self._store = store
        self._max_backlog = max_backlog
        self._endpoints = endpoints
        self._runner = runner
        self._key_touched: dict[str, float] = {}

    async def accept(self, url_token: str, body: bytes, api_key: str | None) -> str:
        """Returns the trace id once the message is durably committed."""
        if not is_well_formed_url_token(url_token):
            raise NotFound("no active endpoint at this URL")
        cached = await self._endpoints.by_token(url_token)
        if cached is None or not cached.record.active:
            raise NotFound("no active endpoint at this URL")
        endpoint = cached.record
        if endpoint.auth_method == "apiKey":
            self._check_key(cached.key_hashes, cached.key_ids, api_key)
        parsed = parse_inbound(body)
        if self._runner.backlog >= self._max_backlog:
            # Everything accepted is committed, but the turns are held in memory:
            # refuse more rather than grow without bound. Clients retry.
            raise Overloaded(
                f"{self._runner.backlog} messages are waiting for their turn; retry shortly",
                retry_after=1,
            )
        msg = InboundMessage(
            endpoint_id=endpoint.id,
            session_id=parsed.session_id,
            user_id=parsed.user_id,
            trace_id=new_trace_id(),
            text=parsed.text,
            data=parsed.data,
            received_at=time.time(),
        )
        msg_id = await self._store.accept_message(msg)
        self._runner.submit(
            InboundMessage(
                id=msg_id,
                endpoint_id=msg.endpoint_id,
                session_id=msg.session_id,
                user_id=msg.user_id,
                trace_id=msg.trace_id,
                text=msg.text,
                data=msg.data,
                received_at=msg.received_at,
            )
        )
        return msg.trace_id

    def _check_key(
        self, key_hashes: tuple[str, ...], key_ids: dict[str, str], api_key: str | None
    ) -> None:
        if not api_key:
            raise Unauthorized(
                "this endpoint requires an API key in the X-Webhook-Key header",
                header="X-Webhook-Key",
            )
        matched = matches_any(hash_api_key(api_key), key_hashes)
        if matched is None:
            raise Unauthorized(
                "the X-Webhook-Key is not a valid key of this endpoint", header="X-Webhook-Key"
            )
        key_id = key_ids[matched]
        now = time.time()
        if now - self._key_touched.get(key_id, 0.0) >= KEY_TOUCH_INTERVAL:
            self._key_touched[key_id] = now
            self._store.touch_api_key_soon(key_id, now)
