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
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path

import structlog

from flowhook.cluster.ownership import Ownership
from flowhook.cluster.partitions import partition_of
from flowhook.delivery.types import PendingDelivery
from flowhook.endpoints.cache import CachedEndpoint, EndpointCache
from flowhook.endpoints.settings import EndpointSettings
from flowhook.errors import StorageError
from flowhook.flows.types import FlowEngine
from flowhook.sessions.failures import Failure, FailureKind, failure_commit
from flowhook.sessions.pipeline import TurnPipeline
from flowhook.sessions.replies import Replies
from flowhook.sessions.session_states import SessionStates
from flowhook.sessions.state_cache import SessionKey, StateCache
from flowhook.sessions.transform_steps import TransformSteps
from flowhook.sessions.transformers import Transformers
from flowhook.sessions.turn_builder import ProfileNeeded, TurnBuilder
from flowhook.settled_during_reads import SettledDuringReads
from flowhook.storage.hotpath import Refusal, TurnRefused
from flowhook.storage.records import InboundMessage, TurnCommit
from flowhook.storage.session_storage import SessionStorageStore
from flowhook.storage.store import SqlStore

log = structlog.get_logger(__name__)

STORAGE_RETRY_MAX_SECONDS = 30.0
# Commits of one turn storage may refuse before the message is failed instead (the flow
# never runs again for a storage retry: only the write is repeated).
COMMIT_TRIES = 5
# Runs of a message read back from the inbox (after a crash, a restart, a takeover)
# before it is failed instead of run again: a poison message cannot loop.
MAX_ATTEMPTS = 3
LOCAL_IDS_MAX = 100_000


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
        max_attempts: int = MAX_ATTEMPTS,
        commit_tries: int = COMMIT_TRIES,
        on_failed: Callable[[str], None] | None = None,
        transform_steps: TransformSteps | None = None,
    ) -> None:
        """``ownership``: with several processes, the partitions this one may run turns
        for (default: all of them, as the only process). ``max_attempts``: runs of a
        message read back from the inbox before it is failed; ``commit_tries``: commits
        of one turn storage may refuse before its message is failed; ``on_failed`` is
        told the kind of each failed message (metrics)."""
        self._max_attempts = max_attempts
        self._commit_tries = commit_tries
        self._on_failed = on_failed
        self._base_url = base_url.rstrip("/")
        self._ownership = Ownership(everything=True) if ownership is None else ownership
        # Several processes: a rest request may wait in another one, which reads the
        # outputs back from the message row.
        self._shared = ownership is not None
        self._replies = replies or Replies(store)
        self._transformers = transformers or Transformers(Path.cwd())
        self._steps = transform_steps or TransformSteps(
            self._transformers, SessionStorageStore(store)
        )
        self._pipeline = pipeline or TurnPipeline()
        self._store = store
        self._endpoints = endpoints
        self._deliver = deliver
        self._engine = engine
        self._states = StateCache(state_cache_size)
        self._stored_states = SessionStates(store)
        self._profiles = StateCache(state_cache_size)
        self._builder = TurnBuilder(
            store,
            engine,
            self._pipeline,
            self._steps,
            self._profiles,
            self._base_url,
        )
        # Turns of one user's different sessions would race on the user's profile
        # (load, change, save): those of flows that use it take this per-user lock.
        # Uncontended, it costs no await; entries are dropped when the last turn of the
        # user is done.
        self._user_locks: dict[SessionKey, tuple[asyncio.Lock, int]] = {}
        self._queues: dict[SessionKey, deque[InboundMessage]] = {}
        self._tasks: dict[SessionKey, asyncio.Task[None]] = {}
        self._held: set[int] = set()  # ids of messages queued or in their turn
        # Messages whose runs this process has counted (0: accepted here, nothing to
        # count), by id, until settled; insertion order, bounded.
        self._local: OrderedDict[int, int] = OrderedDict()
        self._reads = SettledDuringReads()  # ids settled while submit_fresh reads run
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False
        self._backlog = 0  # messages queued or running, across all sessions
        self.turns = 0
        self.failed = 0  # messages that ended failed
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
        with self._reads.reading() as stale:
            msgs = await read()
            fresh = [
                m
                for m in msgs
                if not stale(m.id, None)
                and m.id not in self._held
                and self._ownership.owns(m.endpoint_id, m.session_id)
            ]
        for msg in fresh:
            self.submit(msg)
        return len(fresh)

    def accepted_here(self, message_id: int) -> None:
        """This process accepted the message: no other process can have started its turn,
        so when it comes back through the inbox its first run needs no counting."""
        self._local[message_id] = 0
        if len(self._local) > LOCAL_IDS_MAX:
            self._local.popitem(last=False)  # O(1); a dict walks its leading holes

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
                except Exception as exc:  # a bug must not stall the session
                    try:
                        await self._fail(queue[0], epoch, Failure.of(FailureKind.TURN, exc), None)
                    except StorageError:
                        await asyncio.sleep(delay)
                        delay = min(delay * 2, STORAGE_RETRY_MAX_SECONDS)
                        continue
                    except TurnRefused:
                        pass  # processed elsewhere meanwhile, or the partition is gone
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
        self._local.pop(message_id, None)
        self._reads.note(message_id)

    async def _turn(self, key: SessionKey, msg: InboundMessage, epoch: int) -> None:
        user_key = (msg.endpoint_id, msg.user_id)
        cached = await self._endpoints.entry_by_id(msg.endpoint_id)
        if cached is None or not self._engine.reads_profile(cached.record.flow):
            # The flow never looks at the profile: no order against the user's other
            # sessions is needed (flows.profile_use).
            try:
                await self._locked_turn(
                    key, user_key, msg, epoch, cached, self._engine.registry_generation
                )
                return
            except ProfileNeeded:
                pass  # the flows changed while it ran: again, in the user's order
            cached = await self._endpoints.entry_by_id(msg.endpoint_id)
        lock, users = self._user_locks.get(user_key) or (asyncio.Lock(), 0)
        self._user_locks[user_key] = (lock, users + 1)
        try:
            async with lock:
                await self._locked_turn(key, user_key, msg, epoch, cached, None)
        finally:
            lock, users = self._user_locks[user_key]
            if users == 1:
                del self._user_locks[user_key]
            else:
                self._user_locks[user_key] = (lock, users - 1)

    async def _locked_turn(
        self,
        key: SessionKey,
        user_key: SessionKey,
        msg: InboundMessage,
        epoch: int,
        cached: CachedEndpoint | None,
        profile_skipped_at: int | None,
    ) -> None:
        """Run one turn and commit it; whatever fails, the message ends processed or
        failed. Raises only StorageError from reads before the turn ran (it is tried again
        as a whole), TurnRefused and ProfileNeeded (``profile_skipped_at``: the flows'
        generation under which the turn was found not to touch the profile)."""
        started = time.perf_counter()
        if msg.read_back:
            counted = self._local.get(msg.id)
            if counted is None:
                # Another process may have died in this turn: count the run, committed
                # before it starts, so a message that kills every process running it
                # ends failed. Counted once here: a retry of the same turn in this
                # process (storage away, a profile race) is not another run.
                counts = await self._store.count_attempts([msg.id])
                if msg.id not in counts:
                    raise TurnRefused(Refusal.ALREADY_PROCESSED)
                counted = self._local[msg.id] = counts[msg.id]
            msg = dataclasses.replace(msg, attempts=max(counted, msg.attempts))
        if cached is None:
            failure = Failure(FailureKind.ENDPOINT_DELETED, "the endpoint was deleted")
            await self._fail(msg, epoch, failure, None)
            return
        webhook = cached.record.type == "webhook"
        if msg.attempts > self._max_attempts:
            reason = (
                f"its turn was started {msg.attempts} times without finishing (the process "
                "crashed or stopped while running it)"
            )
            failure = Failure(FailureKind.INTERRUPTED, reason)
            await self._fail(msg, epoch, failure, cached.settings, webhook)
            return
        raw_state = self._states.get(key)
        if raw_state is None:
            raw_state = await self._stored_states.load(msg.endpoint_id, msg.session_id)
        store_reply = self._shared and not self._replies.waits_for(msg.id)
        try:
            prepared = await self._builder.build(
                msg, epoch, cached, raw_state, store_reply, profile_skipped_at
            )
        except (StorageError, ProfileNeeded):
            raise
        except Exception as exc:  # any failure of the turn fails its message
            await self._fail(
                msg, epoch, Failure.of(FailureKind.TURN, exc), cached.settings, webhook
            )
            return
        deliveries = await self._write(prepared.commit, msg, epoch, cached.settings, webhook)
        if deliveries is None:
            return  # storage refused the turn every time: its message failed instead
        self._states.put(key, prepared.new_state)
        if prepared.profile is not None:
            self._profiles.put(
                user_key,
                {"data": prepared.profile, "version": (prepared.profile_version or 0) + 1},
            )
        self.turns += 1
        if prepared.failure is not None:
            self._count_failure(msg, prepared.failure)
        if deliveries:
            self._deliver(deliveries)
        if prepared.replied is not None:
            self._replies.settle(msg.id, prepared.replied)
        log.debug(
            "turn.done",
            endpoint_id=msg.endpoint_id,
            trace_id=msg.trace_id,
            outputs=prepared.outputs,
            ms=round((time.perf_counter() - started) * 1000, 2),
        )

    async def _write(
        self,
        commit: TurnCommit,
        msg: InboundMessage,
        epoch: int,
        settings: EndpointSettings | None,
        webhook: bool,
    ) -> list[PendingDelivery] | None:
        """Commit a computed turn, repeating only the write while storage refuses it.
        After ``commit_tries`` refusals the message is failed instead (a smaller write);
        while storage refuses that too, it is away, and both are tried again later.
        Returns None when the message was failed instead."""
        tries = 0
        delay = 0.1
        while True:
            try:
                return await self._store.commit_turn(commit)
            except StorageError as exc:
                tries += 1
                if tries >= self._commit_tries:
                    reason = f"storage refused the turn's commit {tries} times ({exc.message})"
                    try:
                        await self._fail(
                            msg, epoch, Failure(FailureKind.STORAGE, reason), settings, webhook
                        )
                    except StorageError:
                        tries = 0
                    else:
                        return None
                log.warning(
                    "turn.commit_retry", message_id=msg.id, error=exc.message, retry_in=delay
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, STORAGE_RETRY_MAX_SECONDS)

    async def _fail(
        self,
        msg: InboundMessage,
        epoch: int,
        failure: Failure,
        settings: EndpointSettings | None,
        webhook: bool = True,
    ) -> None:
        """End the message failed with its reason (and the endpoint's error reply, if
        any); the session's state stays as it was. Raises StorageError or TurnRefused."""
        commit, replied = failure_commit(
            msg,
            failure,
            epoch=epoch,
            settings=settings,
            webhook=webhook,
            store_reply=self._shared and not self._replies.waits_for(msg.id),
        )
        deliveries = await self._store.commit_turn(commit)
        self._count_failure(msg, failure)
        if deliveries:
            self._deliver(deliveries)
        self._replies.settle(msg.id, replied)

    def _count_failure(self, msg: InboundMessage, failure: Failure) -> None:
        self.failed += 1
        if self._on_failed is not None:
            self._on_failed(failure.kind.value)
        log.error(
            "turn.failed",
            endpoint_id=msg.endpoint_id,
            message_id=msg.id,
            trace_id=msg.trace_id,
            kind=failure.kind.value,
            node=failure.node,
            reason=failure.reason,
        )
