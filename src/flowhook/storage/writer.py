"""Group commit: one thread owns the write connection and commits many writes at once.

Callers on the event loop enqueue a write and await its future. The thread drains
everything queued, runs it in ONE transaction, commits, and only then resolves
the futures, so a resolved future always means "durably committed". Under load
hundreds of messages share one fsync; idle, a single write commits at once.

Writes submitted during one turn of the event loop are handed to the thread together,
at the end of that turn (one queue operation and at most one wake-up of the thread per
turn, not per write). Transactions are begun and committed on the driver connection
(SQLAlchemy's own bookkeeping cost about a third of an idle commit's CPU); a batch
function that writes through SQLAlchemy is committed through it.

Writes of the same kind that sit next to each other in the queue are handed to
their batch function together, so the batch function can use executemany. Kinds declared
order-free (``order_free``: the hot path's accepts, turns and outcomes, none of which can
depend on another write of the same transaction) are gathered across the
queue, up to the next write of another kind: one statement per kind and commit, where
writes arriving in several loop turns would otherwise alternate and each run of them
would pay its own statements (docs/performance.md, "Order-free writes").
Commits are spaced (``min_spacing``, 2 ms under ``flowhook serve``): a commit starts no
sooner than that after the previous one started. Idle, a write still commits at once
(the last commit is long past), and under saturation a commit takes longer than the
spacing anyway. In between, without it, each commit carried the few writes that arrived
during the previous one, and every commit costs a log sync and its CPU whatever it
carries: at 1,500 messages a second the writer spent 240-270 µs of CPU per message
against 70-90 at saturation. Spaced, the writes of 2 ms share one commit
(docs/performance.md, "Commits spaced at moderate load").

If a transaction fails, each write is retried in a transaction of its own, so a
single bad write fails alone and the others still commit. A connection that broke
(the database restarted, the connection was terminated) is dropped and the next
write opens a new one: the writer outlives the database going away.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import structlog
from sqlalchemy import Connection, Engine

from flowhook.errors import FlowhookError, StorageError

log = structlog.get_logger(__name__)

A = TypeVar("A")
R = TypeVar("R")

# A batch function applies many writes of one kind on an open transaction and
# returns one result per write, in order.
BatchFn = Callable[[Connection, Sequence[Any]], Sequence[Any]]
# Applies AND commits a whole batch given as runs of one kind each (their writes'
# arguments), returning each run's results; None when it does not take this batch
# (nothing done: the batch goes run by run).
TogetherFn = Callable[[Connection, Sequence[tuple[BatchFn, list[Any]]]], list[list[Any]] | None]


@dataclass(slots=True)
class _Write(Generic[A]):
    fn: BatchFn
    arg: A
    future: asyncio.Future[Any]


class GroupCommitWriter:
    """Serialises all writes through one connection, committing them in groups."""

    def __init__(
        self,
        engine: Engine,
        *,
        batch_max: int = 512,
        on_commit: Callable[[], None] | None = None,
        min_spacing: float = 0.0,
    ) -> None:
        """``on_commit``: called on the writer thread after each batch that committed.
        ``min_spacing``: seconds from the start of one commit to the start of the next,
        at least (writes queued meanwhile join the next one)."""
        self._engine = engine
        self._on_commit = on_commit
        self._batch_max = batch_max
        self._min_spacing = min_spacing
        self._queue: queue.SimpleQueue[list[_Write[Any]] | None] = queue.SimpleQueue()
        # Writes of the current turn of each event loop, handed over at its end.
        self._pending: dict[asyncio.AbstractEventLoop, list[_Write[Any]]] = {}
        self._thread = threading.Thread(target=self._run, name="flowhook-writer", daemon=True)
        self._conn: Connection | None = None  # owned by the writer thread
        self._raw: Any = None  # its driver connection
        self._started = False
        self._order_free: frozenset[BatchFn] = frozenset()
        self._together: TogetherFn | None = None
        self.commits = 0  # number of transactions committed (for metrics and tests)
        self.writes = 0

    def order_free(self, *fns: BatchFn) -> None:
        """Declare kinds whose writes never depend on each other within one transaction:
        each such kind's writes of a batch run together, in their order, up to the next
        write of an undeclared kind (whose position is kept)."""
        self._order_free = frozenset(fns)

    def together(self, fn: TogetherFn) -> None:
        """Offer every batch to ``fn`` first (flowhook.storage.hotpath_together)."""
        self._together = fn

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    def stop(self) -> None:
        if self._started:
            for loop in list(self._pending):
                self._hand_over(loop)  # submitted before stop: still committed
            self._queue.put(None)
            self._thread.join(timeout=30)
            self._started = False

    def submit(self, fn: BatchFn, arg: Any) -> asyncio.Future[Any]:
        """Enqueue one write; the future resolves once it is committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        pending = self._pending.get(loop)
        if pending is None:
            pending = self._pending[loop] = []
            loop.call_soon(self._hand_over, loop)
        pending.append(_Write(fn, arg, future))
        return future

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        pending = self._pending.pop(loop, None)
        if pending:
            self._queue.put(pending)

    async def write(self, fn: BatchFn, arg: Any) -> Any:
        return await self.submit(fn, arg)

    def _run(self) -> None:
        try:
            waiting: list[_Write[Any]] = []
            stop = False
            started = -self._min_spacing
            while not stop or waiting:
                if not waiting:
                    first = self._queue.get()
                    if first is None:
                        return
                    waiting = first
                early = started + self._min_spacing - time.monotonic()
                if early > 0:
                    time.sleep(early)  # what is submitted meanwhile joins this commit
                started = time.monotonic()
                while not stop and len(waiting) < self._batch_max:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        stop = True
                    else:
                        waiting += nxt
                batch, waiting = waiting[: self._batch_max], waiting[self._batch_max :]
                self._commit(batch)
        finally:
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    self._conn.close()
                self._conn = None

    def _connection(self) -> Connection:
        if self._conn is None or self._conn.invalidated or self._conn.closed:
            self._discard()
            self._conn = self._engine.connect()
            self._raw = self._conn.connection.driver_connection
        return self._conn

    def _discard(self) -> None:
        """Forget a connection that may be broken; the next write opens a new one."""
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.invalidate()
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn = None
        self._raw = None

    def _rollback(self) -> None:
        if self._conn is None:
            return
        try:
            if self._conn.in_transaction():
                self._conn.rollback()  # SQLAlchemy's, which rolls the driver's back
            else:
                self._raw.rollback()
        except Exception:  # the connection is gone: so is its transaction
            self._discard()

    def _commit(self, batch: list[_Write[Any]]) -> None:
        settled: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        try:
            results = self._apply(batch)
        except Exception:
            self._rollback()
            # Each write again, alone: the bad one fails by itself, a transient
            # failure (e.g. a busy database, a connection lost) gets a second chance.
            for item in batch:
                try:
                    (result,) = self._apply([item])
                except Exception as exc:
                    self._rollback()
                    settled.append((item.future, None, _translate(exc)))
                else:
                    self.commits += 1
                    self.writes += 1
                    settled.append((item.future, result, None))
        else:
            self.commits += 1
            self.writes += len(batch)
            settled = [(w.future, r, None) for w, r in zip(batch, results, strict=True)]
        _resolve_all(settled)
        if self._on_commit is not None:
            self._on_commit()

    def _apply(self, batch: list[_Write[Any]]) -> list[Any]:
        conn = self._connection()
        # The driver begins the transaction at the first write (sqlite3 and psycopg
        # alike: SQLAlchemy's begin() emits nothing either).
        results: list[Any] = [None] * len(batch)
        positions = _runs(batch, self._order_free)
        runs = [(fn, [batch[i].arg for i in at]) for fn, at in positions]
        together = None if self._together is None else self._together(conn, runs)
        outs = [fn(conn, args) for fn, args in runs] if together is None else together
        for (_fn, at), out in zip(positions, outs, strict=True):
            for i, result in zip(at, out, strict=True):
                results[i] = result
        if together is not None:
            return results  # applied and committed
        if conn.in_transaction():
            conn.commit()  # a batch function wrote through SQLAlchemy: commit through it
        else:
            self._raw.commit()
        return results


def _runs(
    batch: list[_Write[Any]], order_free: frozenset[BatchFn]
) -> list[tuple[BatchFn, list[int]]]:
    """The batch as runs of one kind each, with the positions of their writes: adjacent
    writes of a kind form a run; writes of order-free kinds join the first run of their
    kind since the last write of another kind."""
    runs: list[tuple[BatchFn, list[int]]] = []
    gathering: dict[BatchFn, list[int]] = {}  # order-free runs open since the last barrier
    for i, write in enumerate(batch):
        fn = write.fn
        if fn in order_free:
            positions = gathering.get(fn)
            if positions is None:
                positions = gathering[fn] = []
                runs.append((fn, positions))
            positions.append(i)
            continue
        gathering.clear()  # nothing gathers across a write of another kind
        if runs and runs[-1][0] is fn:
            runs[-1][1].append(i)
        else:
            runs.append((fn, [i]))
    return runs


def _translate(exc: Exception) -> FlowhookError:
    if isinstance(exc, FlowhookError):
        return exc
    log.error("storage.write_failed", error=type(exc).__name__, detail=str(exc)[:300])
    return StorageError(f"storage write failed: {type(exc).__name__}")


def _resolve_all(settled: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    """Hand results back to the event loop(s) in one wake-up per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any, Any]]] = {}
    for item in settled:
        by_loop.setdefault(item[0].get_loop(), []).append(item)
    for loop, items in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(_settle, items)


def _settle(items: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, result, exc in items:
        if future.done():
            continue
        if exc is None:
            future.set_result(result)
        else:
            future.set_exception(exc)
