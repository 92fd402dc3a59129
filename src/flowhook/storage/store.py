"""The Store: every read and write flowhook does, behind one interface.

``SqlStore`` serves SQLite and PostgreSQL with the same SQLAlchemy Core
statements. Writes go through the group-commit writer; reads run on a small
thread pool so the event loop never blocks on the database.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
import structlog
from sqlalchemy import (
    ARRAY,
    BigInteger,
    Connection,
    Engine,
    Row,
    Text,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from flowhook.delivery.types import AttemptResult, PendingDelivery
from flowhook.errors import Conflict, StorageError
from flowhook.storage import config_writes
from flowhook.storage import schema as t
from flowhook.storage.engine import backend_name, create_db_engine
from flowhook.storage.hotpath import ConfigChanged, HotPath, Refusal, TurnRefused
from flowhook.storage.hotpath_together import CommitTogether
from flowhook.storage.records import ApiKeyRecord, EndpointRecord, InboundMessage, TurnCommit
from flowhook.storage.wal_checkpoints import WalCheckpointer
from flowhook.storage.writer import GroupCommitWriter

R = TypeVar("R")
# How long close() waits for connections still in use on threads it does not own.
CHECKIN_WAIT_SECONDS = 10.0
log = structlog.get_logger(__name__)

ENDPOINT_FIELDS = (
    "name",
    "flow",
    "auth_method",
    "webhook_url",
    "webhook_user",
    "webhook_password",
    "locale",
    "active",
    "signing_secret",
    "previous_signing_secret",
    "signing_secret_rotated_at",
    "type",
    "settings",
)


def application_name(worker_id: str) -> str:
    """How a worker's database connections are named (``pg_stat_activity``)."""
    return f"flowhook:{worker_id}"[:63]


class StaleConfig(Exception):
    """An insert was refused: the configuration generation moved since the check."""

    def __init__(self, generation: int) -> None:
        super().__init__(f"configuration generation is now {generation}")
        self.generation = generation


@dataclass(frozen=True, slots=True)
class ScanMark:
    """Where a read of pending messages stood: the largest message id then, and the
    oldest transaction still running then."""

    max_id: int
    xmin: int


class SqlStore:
    """SQLite or PostgreSQL, chosen by the URL."""

    def __init__(
        self,
        url: str,
        *,
        batch_max: int = 512,
        read_threads: int = 4,
        max_overflow: int | None = None,
        prepare: bool = True,
        owner: str | None = None,
        wal_checkpoints: bool = True,
        commit_spacing: float = 0.0,
    ) -> None:
        """``read_threads`` reads run at once, each on a pooled connection; the writer
        thread holds one more. ``owner``: this process's worker id when several processes
        share a PostgreSQL database (turn commits are then fenced by partition leases).
        ``wal_checkpoints``: on SQLite, copy the log into the database on a thread of its
        own (``flowhook.storage.wal_checkpoints``). ``commit_spacing``: seconds between the
        starts of two group commits, at least (``GroupCommitWriter``)."""
        self.backend = backend_name(url)
        self.read_threads = read_threads
        self.engine: Engine = create_db_engine(
            url,
            # the readers, the writer, the coordination and the generation threads
            pool_size=read_threads + 3,
            max_overflow=read_threads if max_overflow is None else max_overflow,
            prepare=prepare,
            application_name=None if owner is None else application_name(owner),
        )
        # Reads on PostgreSQL run in autocommit. At READ COMMITTED each statement takes its
        # own snapshot with or without a transaction around it, so a read sees the same; the
        # transaction cost two more round trips per read (BEGIN, then ROLLBACK at check-in),
        # and psycopg forgets a connection's prepared statements at every ROLLBACK: no read
        # was ever prepared, each was parsed and planned anew (docs/performance.md,
        # "PostgreSQL, one process"). SQLite keeps its transaction (a read of several
        # statements sees one snapshot there).
        self.read_engine: Engine = (
            self.engine.execution_options(isolation_level="AUTOCOMMIT")
            if self.backend == "postgresql"
            else self.engine
        )
        database = self.engine.url.database
        self._checkpoints = (
            WalCheckpointer(database)
            if wal_checkpoints and self.backend == "sqlite" and database and database != ":memory:"
            else None
        )
        self.writer = GroupCommitWriter(
            self.engine,
            batch_max=batch_max,
            on_commit=None if self._checkpoints is None else self._checkpoints.committed,
            min_spacing=commit_spacing,
        )
        self._readers = ThreadPoolExecutor(max_workers=read_threads, thread_name_prefix="fh-read")
        # Lease heartbeats must never wait behind a backlog of reads.
        self._coordinator = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fh-lease")
        # Nor must the configuration generation: every delivery attempt waits for it, so it
        # does not queue behind the store's other reads (session loads, read-backs).
        self._generation_reader = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="fh-generation"
        )
        self._hot = HotPath(self.backend, owner=owner)
        self.owner = self._hot.owner
        # A turn's commit waits for its message's accept, an outcome for its output's
        # turn: none of these three can meet what it depends on in one transaction. (The
        # rare run counts of read-back messages keep their place, as do all other writes.)
        self.writer.order_free(
            self._hot.insert_messages, self._hot.commit_turns, self._hot.record_outcomes
        )
        if self._hot.owner is not None:
            # Its hot-path batches in two round trips (flowhook.storage.hotpath_together).
            self.writer.together(CommitTogether(self._hot, prepare=prepare))

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        if self._checkpoints is not None:
            self._checkpoints.start()
        self.writer.start()

    def close(self) -> None:
        self.writer.stop()
        if self._checkpoints is not None:
            self._checkpoints.stop()
        self._readers.shutdown(wait=True)
        self._coordinator.shutdown(wait=True)
        self._generation_reader.shutdown(wait=True)
        self._await_checkins()
        self.engine.dispose()

    def _await_checkins(self, timeout: float = CHECKIN_WAIT_SECONDS) -> None:
        """Wait (bounded) until no pooled connection is checked out. A read whose caller
        was cancelled keeps running on its thread (``DeliveryStore`` reads on the loop's
        executor); ``dispose`` closes only the connections in the pool, and one returned
        after it would stay open until the garbage collector finds it."""
        checked_out = getattr(self.engine.pool, "checkedout", None)
        if checked_out is None:
            return
        deadline = time.monotonic() + timeout
        while checked_out() > 0 and time.monotonic() < deadline:
            time.sleep(0.01)

    async def _read(self, fn: Callable[[Connection], R]) -> R:
        return await self._run(fn, self._readers, transaction=False)

    async def transact(self, fn: Callable[[Connection], R]) -> R:
        """Run ``fn`` in a transaction of its own on a pooled connection, apart from the
        group-commit writer."""
        return await self._run(fn, self._readers, transaction=True)

    async def coordinate(self, fn: Callable[[Connection], R]) -> R:
        """``transact`` on the coordination thread: lease heartbeats and claims, which
        must not queue behind reads."""
        return await self._run(fn, self._coordinator, transaction=True)

    async def _run(
        self, fn: Callable[[Connection], R], pool: ThreadPoolExecutor, *, transaction: bool
    ) -> R:
        """``fn`` on a pooled connection in ``pool``'s thread; committed at the end when
        ``transaction``. Driver errors become StorageError."""

        def run() -> R:
            try:
                with self.engine.begin() if transaction else self.read_engine.connect() as conn:
                    return fn(conn)
            except SQLAlchemyError as exc:
                what = "transaction" if transaction else "read"
                raise StorageError(f"storage {what} failed: {type(exc).__name__}") from exc

        return await asyncio.get_running_loop().run_in_executor(pool, run)

    async def _write(
        self, fn: Callable[[Connection, Sequence[Any]], Sequence[Any]], arg: Any
    ) -> Any:
        return await self.writer.write(fn, arg)

    async def ping(self) -> None:
        await self._read(lambda conn: conn.exec_driver_sql("SELECT 1").scalar())

    # -- endpoints ----------------------------------------------------------------------------

    async def create_endpoint(self, rec: EndpointRecord) -> None:
        await self._write(_insert_endpoint, rec)

    async def update_endpoint(
        self, endpoint_id: str, changes: dict[str, Any]
    ) -> EndpointRecord | None:
        return await self._write(_update_endpoint, (endpoint_id, changes))  # type: ignore[no-any-return]

    async def delete_endpoint(
        self, endpoint_id: str, *, force: bool = False
    ) -> config_writes.DeleteResult:
        """Delete an endpoint and its keys, unless work is pending and not ``force``
        (``flowhook.storage.config_writes``)."""
        return await self._write(  # type: ignore[no-any-return]
            config_writes.delete_endpoints, config_writes.DeleteRequest(endpoint_id, force)
        )

    async def config_generation(self) -> int:
        """The configuration generation: bumped by every change to endpoints or keys."""
        return await self._run(
            config_writes.read_generation, self._generation_reader, transaction=False
        )

    async def endpoint_ids(self) -> set[str]:
        return await self._read(config_writes.endpoint_ids)

    async def get_endpoint(self, endpoint_id: str) -> EndpointRecord | None:
        return await self._read(
            lambda c: _endpoint(
                c.execute(select(t.endpoints).where(t.endpoints.c.id == endpoint_id)).first()
            )
        )

    async def get_endpoint_by_token(self, url_token: str) -> EndpointRecord | None:
        return await self._read(
            lambda c: _endpoint(
                c.execute(select(t.endpoints).where(t.endpoints.c.url_token == url_token)).first()
            )
        )

    async def list_endpoints(self) -> list[EndpointRecord]:
        def run(c: Connection) -> list[EndpointRecord]:
            rows = c.execute(select(t.endpoints).order_by(t.endpoints.c.created_at)).all()
            return [_endpoint_row(r) for r in rows]

        return await self._read(run)

    # -- API keys -----------------------------------------------------------------------------

    async def create_api_key(self, rec: ApiKeyRecord) -> None:
        await self._write(_insert_api_key, rec)

    async def list_api_keys(self, endpoint_id: str) -> list[ApiKeyRecord]:
        def run(c: Connection) -> list[ApiKeyRecord]:
            rows = c.execute(
                select(t.api_keys)
                .where(t.api_keys.c.endpoint_id == endpoint_id)
                .order_by(t.api_keys.c.created_at)
            ).all()
            return [ApiKeyRecord(**r._mapping) for r in rows]

        return await self._read(run)

    async def delete_api_key(self, endpoint_id: str, key_id: str) -> bool:
        return await self._write(_delete_api_key, (endpoint_id, key_id))  # type: ignore[no-any-return]

    def touch_api_key_soon(self, key_id: str, at: float) -> None:
        """Record a key's use without waiting for the commit: bookkeeping, not security."""
        self.writer.submit(_touch_api_key, (key_id, at)).add_done_callback(_log_if_failed)

    # -- inbox and turns ----------------------------------------------------------------------

    async def accept_message(self, msg: InboundMessage) -> int:
        """Commit an inbound message; returns its id once durable. Raises ConfigChanged
        (nothing written) when ``msg.generation`` is set and the stored configuration
        generation has moved since."""
        result = await self._write(self._hot.insert_messages, msg)
        if isinstance(result, ConfigChanged):
            raise StaleConfig(result.generation)
        return int(result)

    async def pending_messages(self, after_id: int = 0, limit: int = 1000) -> list[InboundMessage]:
        """Pending messages in id order (commit order of causally related messages)."""
        query = (
            select(t.messages)
            .where(t.messages.c.status == "pending", t.messages.c.id > after_id)
            .order_by(t.messages.c.id)
            .limit(limit)
        )

        def run(c: Connection) -> list[InboundMessage]:
            return [_message(r) for r in c.execute(query).all()]

        return await self._read(run)

    async def pending_message_ids(
        self, partitions: Sequence[int], limit: int, since: ScanMark | None = None
    ) -> tuple[list[int], ScanMark | None]:
        """Ids of the pending messages of sessions in these partitions, oldest first, and
        the mark to pass as ``since`` next time (PostgreSQL).

        With ``since``, only messages that may have committed after that earlier read:
        a larger id, or accepted by a transaction that was still running then (its id is
        at least that read's oldest running transaction id). Nothing committed later is
        missed, whatever order the commits came in."""
        m = t.messages.c
        query = select(m.id).where(m.status == "pending", m.partition.in_(partitions))
        if since is not None:
            query = query.where((m.id > since.max_id) | (m.txid >= since.xmin) | m.txid.is_(None))
        query = query.order_by(m.id).limit(limit)

        def run(c: Connection) -> tuple[list[int], ScanMark | None]:
            xmin = None
            if self.backend == "postgresql":
                # Taken before the ids: any transaction not visible to the read below
                # has an id at least this.
                xmin = int(
                    c.exec_driver_sql(
                        "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
                    ).scalar_one()
                )
            top = c.execute(select(func.max(m.id))).scalar()
            ids = [int(i) for i in c.execute(query).scalars()]
            if xmin is None:
                return ids, None
            return ids, ScanMark(max_id=int(top or 0), xmin=xmin)

        return await self._read(run)

    async def pending_messages_by_ids(self, ids: Sequence[int]) -> list[InboundMessage]:
        """Those of ``ids`` still pending, in id order."""
        if self.backend == "postgresql":
            # By the primary key, pending ones kept here: with ``status = 'pending'`` in the
            # query, PostgreSQL may walk a whole partial index of pending messages per id
            # (docs/architecture.md, "PostgreSQL cost per message").
            pg_query = (
                select(t.messages)
                .where(t.messages.c.id == func.any(bindparam("ids", type_=ARRAY(BigInteger))))
                .order_by(t.messages.c.id)
            )
            return await self._read(
                lambda c: [
                    _message(r)
                    for r in c.execute(pg_query, {"ids": list(ids)}).all()
                    if r.status == "pending"
                ]
            )
        query = (
            select(t.messages)
            .where(t.messages.c.id.in_(list(ids)), t.messages.c.status == "pending")
            .order_by(t.messages.c.id)
        )
        return await self._read(lambda c: [_message(r) for r in c.execute(query).all()])

    async def count_attempts(self, message_ids: Sequence[int]) -> dict[int, int]:
        """Count a run for each of these messages (read back from the inbox), committed
        before the run starts; returns the new counts of those still pending."""
        if not message_ids:
            return {}
        return await self._write(self._hot.count_attempts, list(message_ids))  # type: ignore[no-any-return]

    async def replies(self, message_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
        """The stored outputs of processed rest messages, by message id."""

        def run(c: Connection) -> dict[int, list[dict[str, Any]]]:
            rows = c.execute(
                select(t.messages.c.id, t.messages.c.reply, t.messages.c.status).where(
                    t.messages.c.id.in_(list(message_ids)), t.messages.c.status != "pending"
                )
            ).all()
            return {int(r.id): orjson.loads(r.reply) if r.reply else [] for r in rows}

        return await self._read(run)

    async def load_session(self, endpoint_id: str, session_id: str) -> dict[str, Any] | None:
        def run(c: Connection) -> dict[str, Any] | None:
            raw = c.execute(_SESSION_STATE, {"endpoint_id": endpoint_id, "session_id": session_id})
            state = raw.scalar()
            return None if state is None else dict(orjson.loads(state))

        return await self._read(run)

    async def load_sessions(
        self, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """The stored states of many sessions, by ``(endpoint_id, session_id)``, in one
        read (a statement per endpoint and chunk of ids); sessions with no stored state are
        absent from the result."""

        def run(c: Connection) -> dict[tuple[str, str], dict[str, Any]]:
            by_endpoint: dict[str, list[str]] = {}
            for endpoint_id, session_id in keys:
                by_endpoint.setdefault(endpoint_id, []).append(session_id)
            query = _SESSION_STATES_PG if self.backend == "postgresql" else _SESSION_STATES
            found: dict[tuple[str, str], dict[str, Any]] = {}
            for endpoint_id, session_ids in by_endpoint.items():
                unique = list(dict.fromkeys(session_ids))
                for start in range(0, len(unique), SESSIONS_PER_READ):
                    chunk = unique[start : start + SESSIONS_PER_READ]
                    rows = c.execute(query, {"endpoint_id": endpoint_id, "session_ids": chunk})
                    for session_id, state in rows:
                        found[(endpoint_id, session_id)] = dict(orjson.loads(state))
            return found

        return await self._read(run)

    async def load_profile(self, endpoint_id: str, user_id: str) -> dict[str, Any] | None:
        def run(c: Connection) -> dict[str, Any] | None:
            raw = c.execute(
                select(t.profiles.c.data).where(
                    t.profiles.c.endpoint_id == endpoint_id, t.profiles.c.user_id == user_id
                )
            ).scalar()
            return None if raw is None else dict(orjson.loads(raw))

        return await self._read(run)

    async def load_profile_versioned(
        self, endpoint_id: str, user_id: str
    ) -> tuple[dict[str, Any], int]:
        """The user's profile and its version; ({}, 0) when none is stored."""

        def run(c: Connection) -> tuple[dict[str, Any], int]:
            row = c.execute(
                select(t.profiles.c.data, t.profiles.c.version).where(
                    t.profiles.c.endpoint_id == endpoint_id, t.profiles.c.user_id == user_id
                )
            ).first()
            return ({}, 0) if row is None else (dict(orjson.loads(row.data)), int(row.version))

        return await self._read(run)

    async def commit_turn(self, turn: TurnCommit) -> list[PendingDelivery]:
        """Mark the message processed, save the session and append the outputs: one
        transaction. Raises ``TurnRefused`` (nothing written) when the message was already
        processed or, with several processes, this one lost the session's partition."""
        result = await self._write(self._hot.commit_turns, turn)
        if isinstance(result, Refusal):
            raise TurnRefused(result)
        return result  # type: ignore[no-any-return]

    # -- outbox -------------------------------------------------------------------------------

    async def pending_deliveries(
        self, after_id: int = 0, limit: int = 5000
    ) -> list[PendingDelivery]:
        def run(c: Connection) -> list[PendingDelivery]:
            rows = c.execute(
                select(*PENDING_COLUMNS)
                .where(t.outbox.c.status == "pending", t.outbox.c.id > after_id)
                .order_by(t.outbox.c.id)
                .limit(limit)
            ).all()
            return [pending_delivery(r) for r in rows]

        return await self._read(run)

    async def record_attempt(
        self,
        item: PendingDelivery,
        attempt: AttemptResult,
        *,
        status: str,
        attempts: int,
        not_before: float = 0.0,
    ) -> None:
        """Log one delivery attempt and move the outbox row to ``status``."""
        await self._write(self._hot.record_outcomes, (item, attempt, status, attempts, not_before))

    async def delivery_counts(self) -> dict[str, int]:
        def run(c: Connection) -> dict[str, int]:
            from sqlalchemy import func

            rows = c.execute(
                select(t.outbox.c.status, func.count()).group_by(t.outbox.c.status)
            ).all()
            return {str(r[0]): int(r[1]) for r in rows}

        return await self._read(run)

    async def attempts_for(self, outbox_id: int) -> list[dict[str, Any]]:
        def run(c: Connection) -> list[dict[str, Any]]:
            rows = c.execute(
                select(t.attempts)
                .where(t.attempts.c.outbox_id == outbox_id)
                .order_by(t.attempts.c.id)
            ).all()
            return [dict(r._mapping) for r in rows]

        return await self._read(run)


# Built once: a turn whose session is not in the state cache reads it (the statement's
# construction cost more than its compiled-cache lookup).
_SESSION_STATE = select(t.sessions.c.state).where(
    t.sessions.c.endpoint_id == bindparam("endpoint_id"),
    t.sessions.c.session_id == bindparam("session_id"),
)
# Session ids per statement of ``load_sessions``: well under SQLite's 32,766 bound
# parameters, and one statement's worth of ids for PostgreSQL to look up by the key.
SESSIONS_PER_READ = 500
_SESSION_STATES = select(t.sessions.c.session_id, t.sessions.c.state).where(
    t.sessions.c.endpoint_id == bindparam("endpoint_id"),
    t.sessions.c.session_id.in_(bindparam("session_ids", expanding=True)),
)
# On PostgreSQL the ids as one array: one statement text whatever their number, so it
# stays prepared.
_SESSION_STATES_PG = select(t.sessions.c.session_id, t.sessions.c.state).where(
    t.sessions.c.endpoint_id == bindparam("endpoint_id"),
    t.sessions.c.session_id == func.any(bindparam("session_ids", type_=ARRAY(Text))),
)


def _log_if_failed(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.warning("storage.background_write_failed", error=type(fut.exception()).__name__)


# -- batch write functions (run on the writer thread) -----------------------------------------


def _bind(name: str) -> Any:
    from sqlalchemy import bindparam

    return bindparam(name)


def _insert_endpoint(conn: Connection, recs: Sequence[EndpointRecord]) -> list[None]:
    for rec in recs:
        try:
            conn.execute(insert(t.endpoints).values(**_endpoint_values(rec)))
        except IntegrityError as exc:
            raise Conflict(f"an endpoint named {rec.name!r} already exists", field="name") from exc
    config_writes.bump_generation(conn)
    return [None] * len(recs)


def _update_endpoint(
    conn: Connection, args: Sequence[tuple[str, dict[str, Any]]]
) -> list[EndpointRecord | None]:
    out: list[EndpointRecord | None] = []
    for endpoint_id, changes in args:
        values = {k: v for k, v in changes.items() if k in ENDPOINT_FIELDS}
        values["updated_at"] = time.time()
        try:
            res = conn.execute(
                update(t.endpoints).where(t.endpoints.c.id == endpoint_id).values(**values)
            )
        except IntegrityError as exc:
            raise Conflict(
                f"an endpoint named {changes.get('name')!r} already exists", field="name"
            ) from exc
        if res.rowcount == 0:
            out.append(None)
            continue
        config_writes.bump_generation(conn)
        out.append(
            _endpoint(
                conn.execute(select(t.endpoints).where(t.endpoints.c.id == endpoint_id)).first()
            )
        )
    return out


def _insert_api_key(conn: Connection, recs: Sequence[ApiKeyRecord]) -> list[None]:
    conn.execute(
        insert(t.api_keys),
        [
            {
                "id": r.id,
                "endpoint_id": r.endpoint_id,
                "name": r.name,
                "key_hash": r.key_hash,
                "key_prefix": r.key_prefix,
                "created_at": r.created_at,
                "last_used_at": r.last_used_at,
            }
            for r in recs
        ],
    )
    config_writes.bump_generation(conn)
    return [None] * len(recs)


def _delete_api_key(conn: Connection, args: Sequence[tuple[str, str]]) -> list[bool]:
    out = []
    for endpoint_id, key_id in args:
        res = conn.execute(
            delete(t.api_keys).where(
                t.api_keys.c.id == key_id, t.api_keys.c.endpoint_id == endpoint_id
            )
        )
        out.append(res.rowcount > 0)
        config_writes.bump_generation(conn)
    return out


def _touch_api_key(conn: Connection, args: Sequence[tuple[str, float]]) -> list[None]:
    conn.execute(
        update(t.api_keys).where(t.api_keys.c.id == _bind("kid")).values(last_used_at=_bind("at")),
        [{"kid": k, "at": at} for k, at in args],
    )
    return [None] * len(args)


# -- row mapping ------------------------------------------------------------------------------


def _endpoint_values(rec: EndpointRecord) -> dict[str, Any]:
    return {
        "id": rec.id,
        "name": rec.name,
        "flow": rec.flow,
        "url_token": rec.url_token,
        "auth_method": rec.auth_method,
        "webhook_url": rec.webhook_url,
        "webhook_user": rec.webhook_user,
        "webhook_password": rec.webhook_password,
        "locale": rec.locale,
        "active": rec.active,
        "created_at": rec.created_at,
        "updated_at": rec.updated_at,
        "signing_secret": rec.signing_secret,
        "previous_signing_secret": rec.previous_signing_secret,
        "signing_secret_rotated_at": rec.signing_secret_rotated_at,
        "type": rec.type,
        "settings": rec.settings,
    }


def _endpoint_row(row: Row[Any]) -> EndpointRecord:
    return EndpointRecord(**row._mapping)


def _endpoint(row: Row[Any] | None) -> EndpointRecord | None:
    return None if row is None else _endpoint_row(row)


def _message(row: Row[Any]) -> InboundMessage:
    return InboundMessage(
        id=row.id,
        endpoint_id=row.endpoint_id,
        session_id=row.session_id,
        user_id=row.user_id,
        trace_id=row.trace_id,
        text=row.text,
        data=None if row.data is None else orjson.loads(row.data),
        received_at=row.received_at,
        kind=row.kind,
        client_ip=row.client_ip,
        read_back=True,
        attempts=row.attempts,
    )


# An outbox row's body (schema.outbox_bodies), as a column of a read of outbox rows: one
# lookup by the bodies' primary key per row read. Not a join: PostgreSQL planned a read
# of outputs by id joined with their bodies, on a fresh database, as a hash join over both
# tables read whole; the subquery leaves the read of the rows as it was.
OUTBOX_BODY = (
    select(t.outbox_bodies.c.body)
    .where(t.outbox_bodies.c.outbox_id == t.outbox.c.id)
    .scalar_subquery()
    .label("body")
)
# Every column of an outbox row, and its body: what ``pending_delivery`` takes.
PENDING_COLUMNS = (*t.outbox.c, OUTBOX_BODY)


def pending_delivery(row: Row[Any]) -> PendingDelivery:
    """An outbox row as the dispatcher takes it."""
    return PendingDelivery(
        outbox_id=row.id,
        delivery_id=row.delivery_id,
        endpoint_id=row.endpoint_id,
        session_id=row.session_id,
        seq=row.id,
        body=row.body.encode(),
        attempts=row.attempts,
        not_before=row.not_before,
    )
