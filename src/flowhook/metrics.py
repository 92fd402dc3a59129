"""Prometheus metrics: one registry per app (no global state), labelled by endpoint id only.

Counters and the latency histogram are updated as things happen: the delivery ledger is
wrapped by ``MeteredLedger``, and ``MeteredInbox`` counts what the ingress accepts and
refuses (every ingress route, fast path included, goes through ``Inbox.accept``). Queue
depth, oldest pending age and the delivery switches are gauges computed at scrape time
from the outbox and the dispatcher.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from flowhook.delivery.dispatcher import ENDPOINT_DELETED, GONE_STATUS
from flowhook.delivery.types import AttemptResult, DeliveryLedger, PendingDelivery
from flowhook.storage.deliveries import PendingStats

# Seconds; spans a fast local receiver up to the default 15 s total timeout.
GONE_MAX = 10_000  # deleted endpoint ids remembered so late outcomes are not counted
ATTEMPT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._gone: set[str] = set()  # deleted endpoints: no longer reported
        self.deliveries = Counter(
            "flowhook_deliveries",
            "Delivery attempts by outcome: delivered (2xx), retry (failed, tried again "
            "later), failed (failed, given up: a dead letter), gone (410: the endpoint's "
            "delivery was switched off).",
            ["endpoint_id", "outcome"],
            registry=r,
        )
        self.attempt_seconds = Histogram(
            "flowhook_delivery_attempt_seconds",
            "Duration of one delivery attempt (the POST, up to its answer or error).",
            ["endpoint_id"],
            buckets=ATTEMPT_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "flowhook_delivery_queue_depth",
            "Outputs pending in the outbox (owed, neither delivered nor given up).",
            ["endpoint_id"],
            registry=r,
        )
        self.oldest_pending = Gauge(
            "flowhook_delivery_oldest_pending_age_seconds",
            "How long the oldest pending output has been waiting (since created or replayed).",
            ["endpoint_id"],
            registry=r,
        )
        self.disabled = Gauge(
            "flowhook_endpoint_delivery_disabled",
            "1 while an endpoint's delivery is switched off (410 Gone, or paused).",
            ["endpoint_id"],
            registry=r,
        )
        self.in_memory = Gauge(
            "flowhook_delivery_in_memory",
            "Outputs this process is working on: queued, in flight or waiting for a retry.",
            registry=r,
        )
        self.storage_up = Gauge(
            "flowhook_metrics_storage_up",
            "1 when the outbox could be read for this scrape (else the outbox gauges are empty).",
            registry=r,
        )
        self.messages_accepted = Counter(
            "flowhook_messages_accepted",
            "Messages the ingress accepted (202: committed).",
            registry=r,
        )
        self.messages_failed = Counter(
            "flowhook_messages_failed",
            "Accepted messages whose turn failed (final state failed), by kind: flow_error, "
            "turn_error, storage_error, interrupted, endpoint_deleted.",
            ["reason"],
            registry=r,
        )
        self._delivery_children: dict[tuple[str, str], Counter] = {}
        self._attempt_children: dict[str, Histogram] = {}
        self.ingress_rejected = Counter(
            "flowhook_ingress_rejected",
            "Ingress requests answered with an error, by HTTP status.",
            ["status"],
            registry=r,
        )
        self.transformer_errors = Counter(
            "flowhook_transformer_errors",
            "Failures of an endpoint's transformers, by hook (input, inject, notify, output, "
            "executionFinished).",
            ["endpoint_id", "hook"],
            registry=r,
        )

    def transformer_failed(self, endpoint_id: str, hook: str) -> None:
        self.transformer_errors.labels(endpoint_id, hook).inc()

    def message_failed(self, kind: str) -> None:
        """A message ended failed (``kind``: flowhook.sessions.failures.FailureKind)."""
        self.messages_failed.labels(kind).inc()

    def forget_endpoint(self, endpoint_id: str) -> None:
        """Stop reporting a deleted endpoint's counters (outcomes recorded for it later,
        by POSTs that were in flight, are not counted)."""
        if len(self._gone) >= GONE_MAX:
            self._gone.clear()
        self._gone.add(endpoint_id)
        self._attempt_children.pop(endpoint_id, None)
        for key in [k for k in self._delivery_children if k[0] == endpoint_id]:
            del self._delivery_children[key]
        for collector in (self.deliveries, self.attempt_seconds):
            for labels in list(collector._metrics):
                if labels[0] == endpoint_id:
                    collector.remove(*labels)

    def count_turns(self, turns: Callable[[], int]) -> None:
        """Expose a counter kept elsewhere (the session runner's turns)."""
        self.expose(
            "flowhook_turns",
            "Turns run (one per accepted message, flow errors included).",
            turns,
            counter=True,
        )

    def expose(
        self, name: str, documentation: str, value: Callable[[], float], *, counter: bool
    ) -> None:
        """A counter or gauge whose value is kept elsewhere, read at scrape time."""
        self.registry.register(_Callback(name, documentation, value, counter=counter))

    def attempt(self, endpoint_id: str, outcome: str, attempt: AttemptResult) -> None:
        if endpoint_id in self._gone:
            return
        # The labelled children are kept: ``labels()`` costs a lock and a tuple per call,
        # several times what the increment does (dropped with the endpoint's series).
        key = (endpoint_id, outcome)
        counter = self._delivery_children.get(key)
        if counter is None:
            counter = self._delivery_children[key] = self.deliveries.labels(endpoint_id, outcome)
        counter.inc()
        if attempt.status is not None or attempt.error != ENDPOINT_DELETED:
            histogram = self._attempt_children.get(endpoint_id)
            if histogram is None:
                histogram = self._attempt_children[endpoint_id] = self.attempt_seconds.labels(
                    endpoint_id
                )
            histogram.observe(attempt.duration_ms / 1000.0)

    def ingress(self, status: int) -> None:
        if status == 202:
            self.messages_accepted.inc()
        elif status >= 400:
            self.ingress_rejected.labels(str(status)).inc()

    def set_outbox(
        self,
        stats: Iterable[PendingStats] | None,
        now: float,
        disabled: Mapping[str, str],
        in_memory: int,
    ) -> None:
        """Scrape-time gauges; ``stats`` None means the outbox could not be read."""
        self.queue_depth.clear()
        self.oldest_pending.clear()
        self.storage_up.set(0 if stats is None else 1)
        for s in stats or ():
            self.queue_depth.labels(s.endpoint_id).set(s.count)
            self.oldest_pending.labels(s.endpoint_id).set(max(0.0, now - s.oldest))
        self.disabled.clear()
        for endpoint_id in disabled:
            self.disabled.labels(endpoint_id).set(1)
        self.in_memory.set(in_memory)


class _Callback(Collector):
    def __init__(
        self, name: str, documentation: str, value: Callable[[], float], *, counter: bool
    ) -> None:
        self._name = name
        self._documentation = documentation
        self._value = value
        self._counter = counter

    def collect(self) -> Iterator[Metric]:
        family: CounterMetricFamily | GaugeMetricFamily
        if self._counter:
            family = CounterMetricFamily(self._name, self._documentation)
        else:
            family = GaugeMetricFamily(self._name, self._documentation)
        family.add_metric([], self._value())
        yield family

    def describe(self) -> Iterator[Metric]:
        return self.collect()


class MeteredLedger:
    """A ``DeliveryLedger`` that counts each outcome, then records it in the inner one."""

    def __init__(self, inner: DeliveryLedger, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics

    async def delivered(self, item: PendingDelivery, attempt: AttemptResult) -> None:
        self._metrics.attempt(item.endpoint_id, "delivered", attempt)
        await self._inner.delivered(item, attempt)

    async def retry_later(
        self, item: PendingDelivery, attempt: AttemptResult, attempts: int, not_before: float
    ) -> None:
        self._metrics.attempt(item.endpoint_id, "retry", attempt)
        await self._inner.retry_later(item, attempt, attempts, not_before)

    async def failed(self, item: PendingDelivery, attempt: AttemptResult, attempts: int) -> None:
        outcome = "gone" if attempt.status == GONE_STATUS else "failed"
        self._metrics.attempt(item.endpoint_id, outcome, attempt)
        await self._inner.failed(item, attempt, attempts)
