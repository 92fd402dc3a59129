"""Accepting a message: find the endpoint, check its key, validate, commit, hand to the runner."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import structlog

from flowhook import logs
from flowhook.endpoints.cache import EndpointCache
from flowhook.endpoints.generation import ConfigGeneration
from flowhook.endpoints.secrets import hash_api_key, is_well_formed_url_token, matches_any
from flowhook.errors import (
    InvalidRequest,
    NotFound,
    Overloaded,
    RateLimited,
    Unauthorized,
    Unprocessable,
)
from flowhook.json_limits import check_document
from flowhook.sessions.attachments import split_attachments
from flowhook.sessions.ratelimit import RateLimiter, retry_after_header
from flowhook.sessions.records import stored_ip
from flowhook.sessions.replies import Replies
from flowhook.sessions.runner import SessionRunner
from flowhook.sessions.sanitize import sanitize_data, sanitize_text
from flowhook.sessions.transform_steps import TransformSteps
from flowhook.sessions.transformers import Transformers
from flowhook.storage.records import InboundMessage, with_id
from flowhook.storage.session_storage import SessionStorageStore
from flowhook.storage.store import SqlStore, StaleConfig
from flowhook.wire import DEFAULT_LIMITS, InboundLimits, new_trace_id, parse_inbound

log = structlog.get_logger(__name__)

# How often one request is checked again after configuration changes before it gives up.
MAX_RECHECKS = 5
# last_used_at is bookkeeping, not security: write it at most this often per key.
KEY_TOUCH_INTERVAL = 60.0


@dataclass(frozen=True, slots=True)
class Accepted:
    trace_id: str
    user_id: str
    session_id: str
    # rest endpoints: resolves to the turn's outputs (AIOutput objects) once committed
    outputs: asyncio.Future[list[dict[str, Any]]] | None = None
    # rest endpoints with an execution-finished transformer: the answer, reshaped
    reshape: Callable[[dict[str, Any]], Awaitable[bytes]] | None = None


class Inbox:
    def __init__(
        self,
        store: SqlStore,
        endpoints: EndpointCache,
        runner: SessionRunner,
        *,
        max_backlog: int = 100_000,
        transformers: Transformers | None = None,
        replies: Replies | None = None,
        hand_over: Callable[[InboundMessage], None] | None = None,
        limits: InboundLimits = DEFAULT_LIMITS,
        config: ConfigGeneration | None = None,
        transform_steps: TransformSteps | None = None,
    ) -> None:
        """``hand_over`` passes a committed message on to whoever runs its session (by
        default this process's runner, in memory); ``replies`` holds rest requests
        waiting for their outputs; ``config`` keeps the endpoint cache in step with
        changes made anywhere: the next request after a change sees it."""
        self._limits = limits
        self._config = config
        self._transformers = transformers or Transformers(Path.cwd())
        self._steps = transform_steps or TransformSteps(
            self._transformers, SessionStorageStore(store)
        )
        self._replies = replies or Replies(store)
        self._hand_over = hand_over or runner.submit
        self._store = store
        self._max_backlog = max_backlog
        self._endpoints = endpoints
        self._runner = runner
        self._key_touched: dict[str, float] = {}
        self._touches_pruned = 0.0
        self._limiter = RateLimiter()

    @property
    def tracked_keys(self) -> int:
        """API keys whose last use is remembered (to write it at most once a minute)."""
        return len(self._key_touched)

    def _forget_old_touches(self, now: float) -> None:
        # Once an interval: a key unused that long (deleted, or its endpoint) is dropped,
        # so the map holds the keys of the last minute only.
        if now - self._touches_pruned < KEY_TOUCH_INTERVAL:
            return
        self._touches_pruned = now
        for key_id in [k for k, at in self._key_touched.items() if now - at >= KEY_TOUCH_INTERVAL]:
            del self._key_touched[key_id]

    async def accept(
        self,
        url_token: str,
        body: bytes,
        api_key: str | None,
        *,
        kind: str = "message",
        scoped: bool = False,
        admin: bool = False,
        client_ip: str | None = None,
    ) -> Accepted:
        """Commit a message (or, with kind "notify", an output to deliver as is) and hand
        it to the runner. Returns once it is durably committed.

        ``scoped`` marks the endpoint-scoped inject/notify API: authenticated with the
        endpoint's API key when it uses keys, otherwise by the admin token (``admin``,
        checked by the web layer); not rate limited.
        """
        started = time.perf_counter()
        if not is_well_formed_url_token(url_token):
            raise NotFound("no active endpoint at this URL")
        # A request transformer runs once per request: a retry after a configuration
        # change reuses its result while the endpoint's transformers are the same (it may
        # have written the session's storage; running it again would do so twice).
        transformed: dict[tuple[Any, ...], bytes] = {}
        config = self._config
        if config is None:
            return await self._accept_once(
                url_token, body, api_key, kind, scoped, admin, client_ip, None, started, transformed
            )
        if config.known is None:
            await config.ensure_fresh()
        # An operator's change holds from the next request: the commit refuses a message
        # checked under an older configuration (StaleConfig), and a refusal (401, 404) is
        # checked again against the stored configuration before it is answered. The
        # common case, an accepted message, costs no read of its own.
        rechecked = False
        for _ in range(MAX_RECHECKS):
            seen = config.known
            try:
                return await self._accept_once(
                    url_token,
                    body,
                    api_key,
                    kind,
                    scoped,
                    admin,
                    client_ip,
                    seen,
                    started,
                    transformed,
                )
            except StaleConfig:
                await config.ensure_fresh()
            except (NotFound, Unauthorized):
                if rechecked:
                    raise
                rechecked = True
                await config.ensure_fresh()
                if config.known == seen:
                    raise
        raise Overloaded("the configuration keeps changing; retry shortly", retry_after=1)

    async def _accept_once(
        self,
        url_token: str,
        body: bytes,
        api_key: str | None,
        kind: str,
        scoped: bool,
        admin: bool,
        client_ip: str | None,
        generation: int | None,
        started: float,
        transformed: dict[tuple[Any, ...], bytes],
    ) -> Accepted:
        cached = await self._endpoints.by_token(url_token)
        if cached is None or not cached.record.active:
            raise NotFound("no active endpoint at this URL")
        endpoint = cached.record
        injected = scoped or kind != "message"
        if endpoint.auth_method == "apiKey":
            self._check_key(cached.key_hashes, cached.key_ids, api_key)
        elif injected and not admin:
            raise Unauthorized("inject and notify need the admin token (Authorization: Bearer)")
        if injected and endpoint.type != "webhook":
            raise Unprocessable(
                "inject and notify need a webhook endpoint: a rest endpoint has no webhook "
                "to deliver to",
                field="type",
            )
        settings = cached.settings
        step = (
            endpoint.id,
            settings.input_transformer,
            settings.inject_transformer,
            settings.notify_transformer,
            settings.abort_on_transformer_error,
        )
        if step not in transformed:
            transformed[step] = await self._steps.request(settings, kind, scoped, body, endpoint.id)
        body = transformed[step]
        attachments = None
        if kind == "notify":
            body, attachments = split_attachments(body)
        parsed = parse_inbound(body, self._limits)
        data = parsed.data
        text = parsed.text
        if attachments is not None:
            data = {**(data or {}), "attachments": attachments}
        elif kind == "message" and settings.input_sanitization:
            text = None if text is None else sanitize_text(text)
            data = None if data is None else sanitize_data(data)
        if settings.rate_limit_per_second is not None and not injected:
            wait = self._limiter.take(
                endpoint.id, settings.rate_limit_per_second, settings.rate_limit_burst
            )
            if wait is not None:
                raise RateLimited(
                    f"this endpoint accepts {settings.rate_limit_per_second:g} messages per "
                    "second; retry later",
                    retry_after=retry_after_header(wait),
                )
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
            text=text,
            data=data,
            received_at=time.time(),
            kind=kind,
            client_ip=stored_ip(client_ip, settings),
            generation=generation,
        )
        msg_id = await self._store.accept_message(msg)
        waiter = self._replies.expect(msg_id) if endpoint.type == "rest" else None
        self._runner.accepted_here(msg_id)
        self._hand_over(with_id(msg, msg_id))
        logs.message_accepted(
            trace_id=msg.trace_id,
            endpoint_id=endpoint.id,
            session_id=msg.session_id,
            status=202 if waiter is None else 200,
            started=started,
            masked=settings.mask_sensitive_logging,
        )
        reshape = None
        if waiter is not None and settings.execution_finished_transformer is not None:
            reshape = functools.partial(self._steps.reply, settings, endpoint_id=endpoint.id)
        return Accepted(msg.trace_id, msg.user_id, msg.session_id, waiter, reshape)

    async def accept_for_session(
        self, endpoint_id: str, session_id: str, body: bytes, kind: str
    ) -> Accepted:
        """Queue a handover-API message (an agent's reply, a handover start or end) in a
        session's order. The caller has checked the admin token."""
        if self._config is not None:
            await self._config.ensure_fresh()  # the handover API: an admin call, not hot
        cached = await self._endpoints.entry_by_id(endpoint_id)
        if cached is None:
            raise NotFound(f"no endpoint with id {endpoint_id!r}", id=endpoint_id)
        if cached.record.type != "webhook":
            raise Unprocessable(
                "handover needs a webhook endpoint: a rest endpoint has no webhook to "
                "deliver agent replies to",
                field="type",
            )
        try:
            doc = orjson.loads(body) if body.strip() else {}
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest(f"request body is not valid JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise InvalidRequest("request body is not a JSON object", expected="a JSON object")
        check_document(body, doc, self._limits.max_depth)  # before writing it back below
        if kind != "agent" and doc.get("text") is None and doc.get("data") is None:
            doc["data"] = {}  # starting or ending a handover needs no content
        parsed = parse_inbound(orjson.dumps({**doc, "sessionId": session_id}), self._limits)
        msg = InboundMessage(
            endpoint_id=endpoint_id,
            session_id=session_id,
            user_id=parsed.user_id,
            trace_id=new_trace_id(),
            text=parsed.text,
            data=parsed.data,
            received_at=time.time(),
            kind=kind,
        )
        msg_id = await self._store.accept_message(msg)
        self._runner.accepted_here(msg_id)
        self._hand_over(with_id(msg, msg_id))
        return Accepted(msg.trace_id, msg.user_id, msg.session_id)

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
            self._forget_old_touches(now)
            self._key_touched[key_id] = now
            self._store.touch_api_key_soon(key_id, now)
