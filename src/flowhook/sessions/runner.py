"""Runs each session's turns one at a time, in arrival order.

Accepted messages are handed over in memory right after their commit (no
polling on the hot path); on start-up, messages committed but not yet processed
are read back from the inbox first. With several processes on one database, the
runner takes only sessions of partitions this process owns (``flowhook.cluster``),
fed by the inbox scanner, and lets go of a partition's sessions when it is handed
back or its lease is lost. Each session with work has one task that
drains its queue, so sessions run concurrently while a session's own turns never
overlap. A turn's outputs and new state are committed in one transaction (the
group-commit writer batches turns of many sessions together) before the
outputs are handed to delivery.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson
import structlog

from flowhook.cluster.ownership import Ownership
from flowhook.cluster.partitions import partition_of
from flowhook.delivery.types import PendingDelivery
from flowhook.endpoints.cache import EndpointCache
from flowhook.endpoints.settings import EndpointSettings
from flowhook.errors import StorageError
from flowhook.flows.engine import RESUME_AT_KEY
from flowhook.flows.types import FlowEngine, Output, SessionState, TurnInput, TurnResult
from flowhook.sessions import handover
from flowhook.sessions.copilot import Copilot
from flowhook.sessions.pipeline import TurnPipeline
from flowhook.sessions.records import transcript_entries, turn_stats
from flowhook.sessions.replies import Replies
from flowhook.sessions.state_cache import SessionKey, StateCache
from flowhook.sessions.transform_steps import TransformSteps
from flowhook.sessions.transformers import Transformers
from flowhook.storage.hotpath import Refusal, TurnRefused
from flowhook.storage.insights import Insights
from flowhook.storage.records import EndpointRecord, InboundMessage, TurnCommit
from flowhook.storage.session_storage import SessionStorageStore
from flowhook.storage.store import SqlStore
from flowhook.wire import output_body

log = structlog.get_logger(__name__)

STORAGE_RETRY_MAX_SECONDS = 30.0


class SessionRunner:
    def __init__(
        self,
        store: SqlStore,
        engine: FlowEngine,
        endpoints: EndpointCache,
        deliver: Callable[[Iterable[PendingDelivery]], None],
        *,
        state_cache_size: int = 100_000,
        pipeline: TurnPipeline | None = None,
        transformers: Transformers | None = None,
        base_url: str = "",
        ownership: Ownership | None = None,
        replies: Replies | None = None,
        transform_steps: TransformSteps | None = None,
    ) -> None:
        """``ownership``: with several processes, the partitions this one may run turns
        for (default: all of them, as the only process)."""
        self._base_url = base_url.rstrip("/")
        self._ownership = Ownership(everything=True) if ownership is None else ownership
        # Several processes: a rest request may wait in another one, which reads the
        # outputs back from the message row.
        self._shared = ownership is not None
        self._replies = replies or Replies(store)
        self._insights = Insights(store)
        self._transformers = transformers or Transformers(Path.cwd())
        self._steps = transform_steps or TransformSteps(
            self._transformers, SessionStorageStore(store)
        )
        self._pipeline = pipeline or TurnPipeline()
        self._copilot = Copilot(engine, self._base_url)
        self._store = store
        self._engine = engine
        self._endpoints = endpoints
        self._deliver = deliver
        self._states = StateCache(state_cache_size)
        self._profiles = StateCache(state_cache_size)
        # Turns of one user's different sessions would race on the user's profile
        # (load, change, save): they take this per-user lock. Uncontended, it costs
        # no await; entries are dropped when the last turn of the user is done.
        self._user_locks: dict[SessionKey, tuple[asyncio.Lock, int]] = {}
        self._queues: dict[SessionKey, deque[InboundMessage]] = {}
        self._tasks: dict[SessionKey, asyncio.Task[None]] = {}
        self._held: set[int] = set()  # ids of messages queued or in their turn
        self._scans: list[set[int]] = []  # ids settled while each submit_fresh read runs
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False
        self._backlog = 0  # messages queued or running, across all sessions
        self.turns = 0
        self.refused = 0  # turn commits refused (lease lost, or message already processed)

    def submit(self, msg: InboundMessage) -> None:
        """Queue a committed message behind its session's earlier ones (ignored when it
        is queued already). A rest request waiting for its outputs registered with
        ``Replies`` first."""
        if msg.id in self._held:
            return
        self._held.add(msg.id)
        self._backlog += 1
        key = (msg.endpoint_id, msg.session_id)
        queue = self._queues.get(key)
        if queue is not None:
            queue.append(msg)
            return
        self._queues[key] = deque((msg,))
        self._idle.clear()
        self._tasks[key] = asyncio.get_running_loop().create_task(self._drain(key))

    def holds(self, message_id: int) -> bool:
        """Whether the message is queued or in its turn here."""
        return message_id in self._held

    async def submit_fresh(self, read: Callable[[], Awaitable[Sequence[InboundMessage]]]) -> int:
        """Submit the pending messages ``read`` returns, minus those whose turn committed
        while it ran (they were read as pending, but running them again would only be
        refused at commit). Returns how many were newly queued."""
        settled: set[int] = set()
        self._scans.append(settled)
        try:
            msgs = await read()
        finally:
            self._scans.remove(settled)
        fresh = [
            m
            for m in msgs
            if m.id not in settled
            and m.id not in self._held
            and self._ownership.owns(m.endpoint_id, m.session_id)
        ]
        for msg in fresh:
            self.submit(msg)
        return len(fresh)

    async def let_go(self, timeout: float) -> None:
        """Wait until no session of a partition this process no longer owns has a turn
        running or queued (each drops its queue before its next turn)."""
        tasks = [
            task for key, task in self._tasks.items() if not self._ownership.owns(key[0], key[1])
        ]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    def forget(self, partitions: Iterable[int]) -> None:
        """Drop what this process remembers of sessions in these partitions: another
        process may have run their turns since (called when a partition is claimed)."""
        wanted = set(partitions)
        self._states.drop_where(lambda key: partition_of(key[0], key[1]) in wanted)
        # Profiles are per user, whose sessions may lie in any partition.
        self._profiles.clear()

    async def recover(self) -> int:
        """Queue every message committed but not processed (after a crash or restart)."""
        count = 0
        after = 0
        while True:
            batch = await self._store.pending_messages(after_id=after, limit=2000)
            if not batch:
                return count
            for msg in batch:
                self.submit(msg)
            count += len(batch)
            after = batch[-1].id

    async def run_until_idle(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._idle.wait(), timeout)

    async def stop(self) -> None:
        self._closing = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    @property
    def backlog(self) -> int:
        """Messages accepted but not yet through their turn."""
        return self._backlog

    async def _drain(self, key: SessionKey) -> None:
        queue = self._queues[key]
        epoch_of = self._ownership.epoch
        partition = partition_of(*key)
        try:
            delay = 0.1
            while queue and not self._closing:
                epoch = epoch_of(partition)
                if epoch is None:
                    break  # handed back or lost: the new owner runs what is queued
                try:
                    await self._turn(key, queue[0], epoch)
                except StorageError as exc:
                    # The message stays pending in the inbox and at the head of the
                    # queue: retry the same turn once storage is back.
                    log.warning("turn.storage_unavailable", error=str(exc), retry_in=delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, STORAGE_RETRY_MAX_SECONDS)
                    continue
                except TurnRefused as exc:
                    self.refused += 1
                    self._states.drop(key)
                    if exc.refusal is Refusal.PROFILE_CHANGED:
                        # Another process changed the user's profile: run the same
                        # message again on the new one.
                        self._profiles.drop((queue[0].endpoint_id, queue[0].user_id))
                        log.info("turn.rerun", reason=exc.refusal.value, message_id=queue[0].id)
                        continue
                    if exc.refusal is Refusal.LEASE_LOST:
                        # The same message again, in order, once the lease is renewed or
                        # claimed anew; if the partition is gone the loop ends above.
                        log.warning("turn.fenced", reason=exc.refusal.value, message_id=queue[0].id)
                        await asyncio.sleep(delay)
                        delay = min(delay * 2, STORAGE_RETRY_MAX_SECONDS)
                        continue
                    log.info("turn.duplicate_dropped", message_id=queue[0].id)
                delay = 0.1
                self._settled(queue.popleft().id)
                self._backlog -= 1
        finally:
            self._backlog -= len(queue)  # non-zero when stopping or letting go
            for msg in queue:
                self._held.discard(msg.id)
            del self._queues[key]
            del self._tasks[key]
            if not self._queues:
                self._idle.set()

    def _settled(self, message_id: int) -> None:
        self._held.discard(message_id)
        for settled in self._scans:
            settled.add(message_id)

    async def _turn(self, key: SessionKey, msg: InboundMessage, epoch: int) -> None:
        user_key = (msg.endpoint_id, msg.user_id)
        lock, users = self._user_locks.get(user_key) or (asyncio.Lock(), 0)
        self._user_locks[user_key] = (lock, users + 1)
        try:
            async with lock:
                await self._locked_turn(key, user_key, msg, epoch)
        finally:
            lock, users = self._user_locks[user_key]
            if users == 1:
                del self._user_locks[user_key]
            else:
                self._user_locks[user_key] = (lock, users - 1)

    async def _locked_turn(
        self, key: SessionKey, user_key: SessionKey, msg: InboundMessage, epoch: int
    ) -> None:
        started = time.perf_counter()
        cached = await self._endpoints.entry_by_id(msg.endpoint_id)
        if cached is None:
            log.warning("turn.endpoint_gone", endpoint_id=msg.endpoint_id, message_id=msg.id)
            await self._store.commit_turn(
                TurnCommit(
                    msg.id,
                    msg.endpoint_id,
                    msg.session_id,
                    msg.user_id,
                    {},
                    failed=True,
                    epoch=epoch,
                    reply=[] if self._shared else None,
                )
            )
            self._replies.settle(msg.id, [])
            return
        endpoint, settings = cached.record, cached.settings
        raw_state = self._states.get(key)
        if raw_state is None:
            raw_state = await self._store.load_session(msg.endpoint_id, msg.session_id)
        failed = False
        profile_version: int | None = None  # stays None unless the flow runs
        events: list[bytes] = []
        state = SessionState.from_json(raw_state)
        # Forwarding to a provider only happens when the endpoint has one; without it a
        # handover node just marks the session (and the flow keeps answering).
        was_handed_over = state.handover is not None
        forwarding = settings.handover_url is not None and was_handed_over
        agent_text: str | None = None  # a forwarded message as the agent reads it
        if msg.kind in ("notify", handover.AGENT):
            # Delivered as is, in the session's order; the flow does not run.
            result = TurnResult([Output(msg.text, msg.data or {})], state)
        elif msg.kind == handover.START:
            state.handover = {"at": time.time(), "by": "api", **(msg.data or {})}
            result = TurnResult([], state)
        elif msg.kind == handover.END:
            state.handover = None
            resume_at = (msg.data or {}).get("resumeAt")
            if isinstance(resume_at, str):
                # The flow takes over at once, at that node (the user said nothing new).
                state.extra[RESUME_AT_KEY] = resume_at
                resumed = dataclasses.replace(msg, text=None, data={})
                result, failed, profile_version = await self._run_flow(
                    endpoint, user_key, resumed, state, settings
                )
            else:
                result = TurnResult([], state)
            if settings.handover_url is not None:
                events.append(handover.event("handover.ended", msg, self._base_url))
        elif forwarding:
            # Handed over: the user's message goes to the agent, not to the flow.
            result = TurnResult([], state)
            forwarded = await self._pipeline.for_agent(settings, state.extra, msg)
            agent_text = forwarded["text"]
            events.append(handover.event("message", msg, self._base_url, **forwarded))
        else:
            result, failed, profile_version = await self._run_flow(
                endpoint, user_key, msg, state, settings
            )
        if (
            settings.handover_url is not None
            and result.state.handover is not None
            and not forwarding
        ):
            prior = await self._insights.transcript(msg.endpoint_id, msg.session_id, limit=500)
            current = [
                {"direction": e.direction, "source": e.source, "text": e.text, "data": e.data}
                for e in transcript_entries(msg, result.outputs, settings)
            ]
            events.append(
                handover.event(
                    "handover.started",
                    msg,
                    self._base_url,
                    handover=result.state.handover,
                    transcript=[
                        {k: i[k] for k in ("direction", "source", "text", "data")} for i in prior
                    ]
                    + current,
                )
            )
        if was_handed_over and msg.kind in ("message", handover.AGENT):
            events.extend(await self._copilot.assist(settings, msg, result.state, text=agent_text))
        outputs_sent = await self._pipeline.after(settings, result.state.extra, result.outputs)
        result = dataclasses.replace(result, outputs=outputs_sent)
        new_state = result.state.to_json()
        outputs = [
            output_body(
                user_id=msg.user_id,
                session_id=msg.session_id,
                text=out.text,
                data=out.data,
                trace_id=msg.trace_id,
                disable_sensitive_logging=settings.mask_sensitive_logging,
                source="agent" if msg.kind == handover.AGENT else "bot",
            )
            for out in result.outputs
        ]
        # A rest endpoint answers the request with its outputs: nothing to deliver.
        rest = endpoint.type != "webhook"
        bodies = [] if rest else outputs
        replied = [orjson.loads(body)["AIOutput"] for body in outputs] if rest else None
        if bodies and settings.output_transformer is not None:
            shaped = [await self._steps.output(settings, b, endpoint.id) for b in bodies]
            bodies = [b for b in shaped if b is not None]  # None: dropped (abort on error)
        deliveries = await self._store.commit_turn(
            TurnCommit(
                message_id=msg.id,
                endpoint_id=msg.endpoint_id,
                session_id=msg.session_id,
                user_id=msg.user_id,
                state=new_state,
                bodies=bodies,
                failed=failed,
                profile=result.profile,
                transcript=transcript_entries(msg, result.outputs, settings),
                handover_events=events,
                stats=turn_stats(msg, result, was_handed_over, settings),
                epoch=epoch,
                profile_version=profile_version,
                # Stored only for a request waiting in another process.
                reply=replied if self._shared and not self._replies.waits_for(msg.id) else None,
            )
        )
        self._states.put(key, new_state)
        if result.profile is not None:
            self._profiles.put(
                user_key, {"data": result.profile, "version": (profile_version or 0) + 1}
            )
        self.turns += 1
        if deliveries:
            self._deliver(deliveries)
        if replied is not None:
            self._replies.settle(msg.id, replied)
        log.debug(
            "turn.done",
            endpoint_id=msg.endpoint_id,
            trace_id=msg.trace_id,
            outputs=len(outputs),
            ms=round((time.perf_counter() - started) * 1000, 2),
        )

    async def _run_flow(
        self,
        endpoint: EndpointRecord,
        user_key: SessionKey,
        msg: InboundMessage,
        state: SessionState,
        settings: EndpointSettings,
    ) -> tuple[TurnResult, bool, int | None]:
        """Run the flow for one message; a crash gives no outputs and keeps the state.
        Also returns the version of the user's profile the flow read (None: the endpoint
        keeps no contact profiles)."""
        profile: dict[str, Any] = {}
        version: int | None = None
        if settings.contact_profiles:
            cached = self._profiles.get(user_key)
            if cached is None:
                stored, stored_version = await self._store.load_profile_versioned(
                    msg.endpoint_id, msg.user_id
                )
                cached = {"data": stored, "version": stored_version}
                self._profiles.put(user_key, cached)
            profile, version = cached["data"], cached["version"]
        turn = TurnInput(
            user_id=msg.user_id,
            session_id=msg.session_id,
            trace_id=msg.trace_id,
            text=msg.text,
            data=msg.data or {},
            locale=endpoint.locale,
            received_at=msg.received_at,
            profile=profile,
            session_timeout=settings.session_timeout_seconds,
        )
        # The pipeline writes into extra (the user's language): a crash keeps it as it was.
        extra_before = dict(state.extra)
        try:
            turn = await self._pipeline.before(settings, state.extra, turn)
            result = await self._engine.run_turn(endpoint.flow, state, turn)
            if not settings.contact_profiles:
                result = dataclasses.replace(result, profile=None)  # nothing kept per user
            return self._pipeline.carry(state.extra, result), False, version
        except Exception as exc:
            log.exception(
                "turn.crashed",
                endpoint_id=msg.endpoint_id,
                flow=endpoint.flow,
                error=type(exc).__name__,
            )
            return (
                TurnResult(outputs=[], state=dataclasses.replace(state, extra=extra_before)),
                True,
                version,
            )
