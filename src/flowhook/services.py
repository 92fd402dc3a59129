"""Builds every part from Settings and wires them together; no global state."""

from __future__ import annotations

import asyncio
import math
import os
import socket
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import structlog

from flowhook.admin_token import resolve_admin_token
from flowhook.cluster.leases import Worker
from flowhook.cluster.node import ClusterNode
from flowhook.cluster.ownership import Ownership
from flowhook.config import Settings
from flowhook.delivery.control import DeliveryControl
from flowhook.delivery.dispatcher import Dispatcher
from flowhook.delivery.lean_transport import LeanTransport
from flowhook.delivery.retry import RetryPolicy
from flowhook.delivery.service import DeliveryService
from flowhook.delivery.types import PendingDelivery, Transport
from flowhook.endpoints.cache import EndpointCache
from flowhook.endpoints.generation import ConfigGeneration
from flowhook.endpoints.key_check import verify_master_key
from flowhook.endpoints.security import EndpointSecurity
from flowhook.endpoints.service import EndpointService
from flowhook.endpoints.targets import WebhookTargets
from flowhook.errors import ConfigError
from flowhook.flows.engine import Engine
from flowhook.flows.factory import engine_from_settings
from flowhook.flows.nodes.code import module_code_problems
from flowhook.flows.registry import FlowRegistry
from flowhook.isolation import CodeWorkers, IsolationLimits
from flowhook.metrics import MeteredLedger, Metrics
from flowhook.outbound_http import OutboundPolicy
from flowhook.private_files import prepare_data_dir
from flowhook.sessions.inbox import Inbox
from flowhook.sessions.pipeline import TurnPipeline
from flowhook.sessions.replies import Replies
from flowhook.sessions.retention import Retention
from flowhook.sessions.runner import SessionRunner
from flowhook.sessions.transform_steps import TransformSteps
from flowhook.sessions.transformers import Transformers
from flowhook.storage import migrate
from flowhook.storage.deliveries import DeliveryStore
from flowhook.storage.engine import backend_name
from flowhook.storage.insights import Insights
from flowhook.storage.ledger import StoreLedger
from flowhook.storage.session_storage import SessionStorageStore
from flowhook.storage.store import SqlStore
from flowhook.wire import InboundLimits

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
    deliveries: DeliveryService
    delivery_control: DeliveryControl
    metrics: Metrics
    pipeline: TurnPipeline
    insights: Insights
    retention: Retention
    # Several processes on one PostgreSQL database; None: this process is the only one.
    cluster: ClusterNode | None = None
    code_workers: CodeWorkers | None = None

    async def start(self) -> None:
        """Recover owed work from storage, then start delivering."""
        self.store.start()
        await self.dispatcher.start()
        await self.delivery_control.load_switches()
        if self.cluster is not None:
            # Owed work is taken partition by partition, as their leases are claimed.
            await self.cluster.start()
        else:
            messages = await self.runner.recover()
            if messages:
                log.info("recovered", pending_messages=messages)
        # Pending outputs are not loaded here: the sweep's first round (in the background)
        # finds the endpoints that have some, and the window takes them as it can.
        self.delivery_control.start_sweep()
        self.retention.start()

    async def stop(self) -> None:
        if self.cluster is not None:
            await self.cluster.stop()  # hand partitions back, so others take over at once
        await self.retention.stop()
        await self.delivery_control.stop()
        await self.runner.stop()
        await self.pipeline.aclose()
        await self.engine.aclose()
        await self.dispatcher.stop()
        if self.code_workers is not None:
            self.code_workers.close()
        self.store.close()

    async def run_until_idle(self, timeout: float = 30.0) -> None:
        """Wait until every accepted message ran and every output reached an outcome."""
        await self.run_turns_until_idle(timeout)
        await self.dispatcher.run_until_idle(timeout)

    async def run_turns_until_idle(self, timeout: float = 30.0) -> None:
        """Wait until every message accepted so far ran its turn (its outputs are with
        the dispatcher, or in the outbox when the window is full)."""
        if self.cluster is not None:
            # Accepted messages reach the runner through the inbox scanner, and those of
            # a partition still opening only once it opened.
            await asyncio.wait_for(self.cluster.ownership.until_open(), timeout)
            await asyncio.wait_for(self.cluster.scanner.until_quiet(), timeout)
        await self.runner.run_until_idle(timeout)


def build_services(settings: Settings, *, transport: Transport | None = None) -> Services:
    url = settings.resolved_database_url
    prepare_data_dir(settings.data_dir, url)
    shared = backend_name(url) == "postgresql"
    if not shared and settings.role != "both":
        raise ConfigError(
            f"role {settings.role!r} needs PostgreSQL (FLOWHOOK_DATABASE_URL=postgresql://...): "
            "with SQLite, one process does everything (role both)"
        )
    registry = FlowRegistry.load(settings.flows_dir)
    if not settings.code_allow_modules:
        refused = [
            problem
            for name in registry.names()
            for problem in module_code_problems(
                registry[name].source, registry[name].nodes.values()
            )
        ]
        if refused:
            raise ConfigError("\n".join(refused))
    migrate.upgrade(url)
    worker = Worker.new(
        f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}", settings.role
    )
    store = SqlStore(
        url,
        batch_max=settings.commit_batch_max,
        commit_spacing=settings.commit_spacing_ms / 1000,
        read_threads=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        prepare=settings.database_prepare,
        owner=worker.id if shared else None,
    )
    security = EndpointSecurity.from_settings(settings)
    try:
        verify_master_key(store.engine, security.box)
    except BaseException:
        store.engine.dispose()  # nothing started yet: only the pool's connections to close
        raise
    ownership = Ownership(everything=not shared)
    replies = Replies(store)
    code_workers = code_workers_from_settings(settings)
    engine = engine_from_settings(registry, settings, code_workers)
    cache = EndpointCache(store, ttl=settings.endpoint_cache_seconds)
    metrics = Metrics()

    def endpoint_removed(endpoint_id: str) -> None:
        """An endpoint was deleted, here or by another process: nothing is kept of it."""
        metrics.forget_endpoint(endpoint_id)
        dispatcher.forget_endpoint(endpoint_id)

    generation = ConfigGeneration(store, cache, on_removed=endpoint_removed)
    transformers = Transformers(
        settings.flows_dir, code_workers, allow_modules=settings.code_allow_modules
    )
    deliveries = DeliveryStore(store)
    control = DeliveryControl(
        deliveries,
        metrics,
        sweep_seconds=settings.delivery_sweep_seconds,
        owned=ownership.owned if shared else None,
    )
    endpoints = EndpointService(
        store,
        flow_exists=engine.has_flow,
        flow_names=engine.flow_names,
        base_url=settings.base_url,
        cache=cache,
        security=security,
        on_delivery_switch=control.on_switch,
        transformers=transformers,
        on_deleted=endpoint_removed,
    )

    resolve_target = WebhookTargets(generation, cache, security)

    dispatcher = Dispatcher(
        transport
        or LeanTransport(
            settings.delivery_connect_timeout,
            settings.delivery_total_timeout,
            guard=security.guard,
        ),
        resolve_target,
        MeteredLedger(StoreLedger(store), metrics),
        RetryPolicy(settings.delivery_retry_schedule),
        max_per_endpoint=settings.delivery_max_per_endpoint,
        max_connections=settings.delivery_max_connections,
        max_per_failing_endpoint=settings.delivery_max_per_failing_endpoint,
        window_per_endpoint=settings.delivery_window_per_endpoint,
        window_total=settings.delivery_window_total,
        # A retry due later than the next sweep or two waits in the outbox, not in memory
        # (without a sweep, nothing would read it back: it waits in memory then).
        park_limit=(
            math.inf
            if settings.delivery_sweep_seconds == 0
            else max(1.0, 2 * settings.delivery_sweep_seconds)
        ),
        on_backlog=control.on_backlog,
        on_arrival=control.on_arrival,
        cold=True,
        on_gone=control.on_gone,
        owns=ownership.owns if shared else None,
        # Outputs waiting for a retry leave their bodies in the outbox until their attempt.
        load_body=deliveries.pending_body,
    )
    control.attach(dispatcher)

    def deliver(items: Iterable[PendingDelivery]) -> None:
        dispatcher.submit(items)

    pipeline = TurnPipeline(
        translation_policy=OutboundPolicy.from_settings("translation", settings),
        nlu_policy=OutboundPolicy.from_settings("nlu connector", settings),
    )
    transform_steps = TransformSteps(
        transformers, SessionStorageStore(store), on_error=metrics.transformer_failed
    )
    runner = SessionRunner(
        store,
        engine,
        cache,
        deliver,
        pipeline=pipeline,
        transformers=transformers,
        transform_steps=transform_steps,
        base_url=settings.base_url,
        ownership=ownership if shared else None,
        replies=replies,
        max_attempts=settings.turn_max_attempts,
        commit_tries=settings.turn_commit_tries,
        on_failed=metrics.message_failed,
    )
    metrics.count_turns(lambda: runner.turns)
    _expose_delivery_metrics(metrics, dispatcher)
    cluster = None
    if shared:
        cluster = ClusterNode(
            store=store,
            worker=worker,
            ownership=ownership,
            runner=runner,
            dispatcher=dispatcher,
            control=control,
            replies=replies,
            listen_url=settings.database_listen_url or url,
            lease_seconds=settings.lease_seconds,
            scan_seconds=settings.scan_seconds,
            max_backlog=settings.max_backlog,
            let_go_seconds=settings.delivery_total_timeout + 1,
        )
        _expose_cluster_metrics(metrics, cluster, runner)
    inbox = Inbox(
        store,
        cache,
        runner,
        max_backlog=settings.max_backlog,
        transformers=transformers,
        transform_steps=transform_steps,
        replies=replies,
        hand_over=None if cluster is None else cluster.hand_over,
        limits=InboundLimits(settings.max_json_depth, settings.max_id_length),
        config=generation,
    )
    token, generated = resolve_admin_token(settings.admin_token, settings.data_dir)
    insights = Insights(store)
    return Services(
        settings=settings,
        store=store,
        engine=engine,
        cache=cache,
        endpoints=endpoints,
        runner=runner,
        dispatcher=dispatcher,
        inbox=inbox,
        admin_token=token,
        admin_token_generated=generated,
        deliveries=DeliveryService(store, on_replayed=control.on_replayed),
        delivery_control=control,
        metrics=metrics,
        pipeline=pipeline,
        insights=insights,
        retention=Retention(
            store,
            insights,
            settings.transcript_purge_seconds,
            settings.history_retention_days,
            settings.analytics_retention_days,
        ),
        cluster=cluster,
        code_workers=code_workers,
    )


def code_workers_from_settings(settings: Settings) -> CodeWorkers:
    """The pool code nodes and transformers share (no process starts until first use)."""
    return CodeWorkers(
        IsolationLimits(
            workers=settings.code_workers,
            timeout=settings.code_timeout_seconds,
            memory_mb=settings.code_memory_mb,
            allow_modules=settings.code_allow_modules,
        )
    )


def _expose_delivery_metrics(metrics: Metrics, dispatcher: Dispatcher) -> None:
    metrics.expose(
        "flowhook_delivery_connections_in_use",
        "POSTs to webhooks in flight now.",
        lambda: dispatcher.connections_in_use,
        counter=False,
    )
    metrics.expose(
        "flowhook_delivery_body_bytes_in_memory",
        "Bytes of output bodies held in memory (outputs waiting for a retry hold none).",
        dispatcher.body_bytes_held,
        counter=False,
    )
    metrics.expose(
        "flowhook_delivery_backlogged_endpoints",
        "Endpoints with outputs waiting in the outbox beyond what memory holds.",
        lambda: len(dispatcher.backlog.endpoints()),
        counter=False,
    )


def _expose_cluster_metrics(metrics: Metrics, cluster: ClusterNode, runner: SessionRunner) -> None:
    metrics.expose(
        "flowhook_partitions_owned",
        "Partitions of sessions whose turns and deliveries this process runs now.",
        lambda: len(cluster.ownership),
        counter=False,
    )
    metrics.expose(
        "flowhook_lease_lost",
        "Partitions whose lease this process lost before handing them back (it stalled).",
        lambda: cluster.coordinator.lost,
        counter=True,
    )
    metrics.expose(
        "flowhook_turns_refused",
        "Turn commits refused: the partition's lease was lost, or the message was already "
        "processed.",
        lambda: runner.refused,
        counter=True,
    )
