"""Builds every part from Settings and wires them together; no global state."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import structlog

from flowhook.admin_token import resolve_admin_token
from flowhook.config import Settings
from flowhook.delivery.dispatcher import Dispatcher
from flowhook.delivery.retry import RetryPolicy
from flowhook.delivery.transport import AiohttpTransport
from flowhook.delivery.types import PendingDelivery, Transport, WebhookTarget
from flowhook.endpoints.cache import EndpointCache
from flowhook.endpoints.service import EndpointService
from flowhook.flows.engine import Engine
from flowhook.flows.registry import FlowRegistry
from flowhook.sessions.inbox import Inbox
from flowhook.sessions.runner import SessionRunner
from flowhook.storage import migrate
from flowhook.storage.ledger import StoreLedger
from flowhook.storage.store import SqlStore

log = structlog.get_logger(__name__)


@dataclass
class Services:
    settings: Settings
    store: SqlStore
    engine: Engine
    cache: EndpointCache
    endpoints: EndpointService
    runner: SessionRunner
    dispatcher: Dispatcher
    inbox: Inbox
    admin_token: str
    admin_token_generated: bool

    async def start(self) -> None:
        """Recover owed work from storage, then start delivering."""
        self.store.start()
        await self.dispatcher.start()
        owed = await self._recover_deliveries()
        messages = await self.runner.recover()
        if owed or messages:
            log.info("recovered", pending_messages=messages, pending_deliveries=owed)

    async def _recover_deliveries(self) -> int:
        count = 0
        after = 0
        while True:
            batch = await self.store.pending_deliveries(after_id=after, limit=5000)
            if not batch:
                return count
            self.dispatcher.submit(batch)
            count += len(batch)
            after = batch[-1].outbox_id

    async def stop(self) -> None:
        await self.runner.stop()
        await self.dispatcher.stop()
        self.store.close()

    async def run_until_idle(self, timeout: float = 30.0) -> None:
        """Wait until every accepted message ran and every output reached an outcome."""
        await self.runner.run_until_idle(timeout)
        await self.dispatcher.run_until_idle(timeout)


def build_services(settings: Settings, *, transport: Transport | None = None) -> Services:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.resolved_database_url
    migrate.upgrade(url)
    store = SqlStore(url, batch_max=settings.commit_batch_max)
    registry = FlowRegistry.load(settings.flows_dir)
    engine = Engine(registry)
    cache = EndpointCache(store, ttl=settings.endpoint_cache_seconds)
    endpoints = EndpointService(
        store, flow_exists=engine.has_flow, base_url=settings.base_url, cache=cache
    )

    async def resolve_target(endpoint_id: str) -> WebhookTarget | None:
        rec = await cache.by_id(endpoint_id)
        if rec is None:
            return None
        return WebhookTarget(rec.webhook_url, rec.webhook_user, rec.webhook_password)

    dispatcher = Dispatcher(
        transport
        or AiohttpTransport(settings.delivery_connect_timeout, settings.delivery_total_timeout),
        resolve_target,
        StoreLedger(store),
        RetryPolicy(settings.delivery_retry_schedule),
        max_per_endpoint=settings.delivery_max_per_endpoint,
    )

    def deliver(items: Iterable[PendingDelivery]) -> None:
        dispatcher.submit(items)

    runner = SessionRunner(store, engine, cache, deliver)
    token, generated = resolve_admin_token(settings.admin_token, settings.data_dir)
    return Services(
        settings=settings,
        store=store,
        engine=engine,
        cache=cache,
        endpoints=endpoints,
        runner=runner,
        dispatcher=dispatcher,
        inbox=Inbox(store, cache, runner),
        admin_token=token,
        admin_token_generated=generated,
    )
