"""``python -m bench turnpath``: CPU of flowhook's own path per message, without HTTP.

The full bench (``run``) measures the server with its HTTP server and client, which the
baseline has too. This measures what flowhook adds: in one process, on SQLite, the
ingress service (``Inbox.accept``: key check, validation, the commit), the runner
(state, flow, the turn's transaction) and the dispatcher (lane, ledger, metrics) over a
transport that answers 200 at once. ``clients`` coroutines send concurrently, like the
closed loop of ``run``; CPU is the process's (all threads, ``time.process_time``).

``--backend postgres`` runs it on a scratch PostgreSQL database (one process, which then
takes its messages from the inbox and fences its commits as with several) and adds
PostgreSQL's CPU per message (``bench.pgstats``) and the statements flowhook sent per
message, counted on the driver's cursors and grouped by statement.

``--cprofile`` adds a cProfile of the event-loop thread timed with ``thread_time``
(CPU, not wall: waits for the GIL held by the writer thread are not charged to the
function that happened to wait), printed by own time.

Every run counts the delivery side's reads of the outbox per message (``OutboxReads``):
refill reads (each walks the endpoint's sessions with pending outputs), outputs read back
(not taken from the session runner), and bodies read one by one for an attempt.

``--http`` replaces the instant transport by the real one (the default, keep-alive pool)
POSTing to the bench receiver in a process of its own, on uvloop like the server: the
CPU per message then includes the outbound request, so the delivery path's cost is
measured without the ingress HTTP server and the load generator. ``--clients`` sets
how many attempts can share a moment (fewer: the half-load shape).
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import io
import os
import pstats
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench import pgstats, procs
from bench.runner import Options, Receiver, base_doc, postgres_database, write_doc
from flowhook.config import Settings
from flowhook.delivery.types import AttemptResult, WebhookTarget
from flowhook.endpoints.models import EndpointCreate
from flowhook.logs import configure_logging
from flowhook.services import build_services
from flowhook.storage.deliveries import DeliveryStore

TEXT = "Hello, I need help with my order"


@dataclass
class TurnPathOptions:
    messages: int = 20_000
    sessions: int = 1000
    users: int = 0  # 0: one user per session
    clients: int = 64
    flow: str = "echo"
    records: bool = True  # transcripts and turn statistics (endpoint defaults: on)
    cprofile: bool = False
    http: bool = False  # real transport to the bench receiver


class InstantTransport:
    """A receiver that takes every POST at once."""

    async def post(
        self, target: WebhookTarget, body: bytes, headers: dict[str, str]
    ) -> AttemptResult:
        return AttemptResult(200, 0.1)

    async def close(self) -> None:
        return None


FLOWS_DIR = Path(__file__).resolve().parent.parent / "flows"


class StatementCount:
    """Counts the statements psycopg sends (``execute`` calls, and the rows of each
    ``executemany``), by the statement's first words."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.rows: dict[str, int] = {}
        self.on = False

    @contextlib.contextmanager
    def installed(self) -> Any:
        import psycopg

        execute, executemany = psycopg.Cursor.execute, psycopg.Cursor.executemany
        count = self

        def counted_execute(cur: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            count.add(query, 1)
            return execute(cur, query, *args, **kwargs)

        def counted_executemany(cur: Any, query: Any, params: Any, **kwargs: Any) -> Any:
            params = list(params)
            count.add(query, len(params))
            return executemany(cur, query, params, **kwargs)

        psycopg.Cursor.execute = counted_execute  # type: ignore[method-assign,assignment]
        psycopg.Cursor.executemany = counted_executemany  # type: ignore[method-assign,assignment]
        try:
            yield self
        finally:
            psycopg.Cursor.execute = execute  # type: ignore[method-assign]
            psycopg.Cursor.executemany = executemany  # type: ignore[method-assign]

    def add(self, query: Any, rows: int) -> None:
        if not self.on:
            return
        text = query if isinstance(query, str) else str(getattr(query, "_obj", query))
        key = " ".join(text.split())[:90]
        self.calls[key] = self.calls.get(key, 0) + 1
        self.rows[key] = self.rows.get(key, 0) + rows

    def per_message(self, messages: int) -> list[tuple[str, float, float]]:
        """(statement, calls per message, rows per message), most calls first."""
        out = [(k, self.calls[k] / messages, self.rows[k] / messages) for k in self.calls]
        return sorted(out, key=lambda r: -r[2])


class OutboxReads:
    """Counts the dispatcher's outbox reads, on ``DeliveryStore`` (the class: the server
    binds its methods at start)."""

    def __init__(self) -> None:
        self.counts = {"refill_reads": 0, "outputs_read_back": 0, "body_reads": 0}
        self.on = False

    @contextlib.contextmanager
    def installed(self) -> Any:
        # Only the reads this version of the store has (``--flowhook-src`` may be older
        # or newer than the bench).
        originals = {
            name: getattr(DeliveryStore, name)
            for name in ("due", "pending_by_ids", "without_bodies", "pending_body")
            if hasattr(DeliveryStore, name)
        }
        counts = self.counts

        async def due(store: Any, *args: Any, **kwargs: Any) -> Any:
            counts["refill_reads"] += self.on
            return await originals["due"](store, *args, **kwargs)

        async def pending_by_ids(store: Any, *args: Any, **kwargs: Any) -> Any:
            items = await originals["pending_by_ids"](store, *args, **kwargs)
            counts["outputs_read_back"] += self.on * len(items)
            return items

        async def pending_body(store: Any, *args: Any, **kwargs: Any) -> Any:
            counts["body_reads"] += self.on
            return await originals["pending_body"](store, *args, **kwargs)

        patched = {
            "due": due,
            "pending_by_ids": pending_by_ids,
            "pending_body": pending_body,
        }
        for name, fn in patched.items():
            if name in originals:
                setattr(DeliveryStore, name, fn)
        try:
            yield self
        finally:
            for name, fn in originals.items():
                setattr(DeliveryStore, name, fn)


async def measure(
    topts: TurnPathOptions,
    data_dir: Path,
    database_url: str | None = None,
    statements: StatementCount | None = None,
    webhook_url: str | None = None,
) -> dict[str, Any]:
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        flows_dir=FLOWS_DIR,
        admin_token=secrets.token_hex(16),
        webhook_allow_cidrs=["127.0.0.0/8"],
    )
    reads = OutboxReads()
    with reads.installed():
        return await _measure(topts, settings, reads, database_url, statements, webhook_url)


async def _measure(
    topts: TurnPathOptions,
    settings: Settings,
    outbox: OutboxReads,
    database_url: str | None,
    statements: StatementCount | None,
    webhook_url: str | None,
) -> dict[str, Any]:
    services = build_services(
        settings, transport=None if webhook_url is not None else InstantTransport()
    )
    await services.start()
    _tune_collector()  # as flowhook serve does once the server is built
    try:
        created = await services.endpoints.create(
            EndpointCreate(
                name="turnpath",
                flow=topts.flow,
                webhook_url=webhook_url or "http://127.0.0.1:9/hook",
                store_transcripts=topts.records,
                collect_analytics=topts.records,
            )
        )
        bodies = [
            orjson.dumps(
                {
                    "userId": f"user-{i if topts.users <= 0 else i % topts.users}",
                    "sessionId": f"session-{i}",
                    "text": TEXT,
                    "data": {"exampleKey": "exampleValue"},
                }
            )
            for i in range(topts.sessions)
        ]
        per_client = max(1, topts.messages // topts.clients)

        async def client(k: int, count: int) -> None:
            for j in range(count):
                body = bodies[(k + j * topts.clients) % len(bodies)]
                await services.inbox.accept(created.url_token, body, None)

        async def drive(count: int) -> None:
            await asyncio.gather(*(client(k, count) for k in range(topts.clients)))
            await services.run_until_idle(120)

        await drive(max(1, 2 * topts.sessions // topts.clients))  # every session once, warm
        writer = services.store.writer
        commits, writes = writer.commits, writer.writes
        profiler = cProfile.Profile(time.thread_time) if topts.cprofile else None
        config = getattr(services.inbox, "_config", None)
        reads = getattr(config, "reads", 0)
        threads = _thread_cpu()
        db = pgstats.meter(database_url)
        db_before = None if db is None else db.read()
        if statements is not None:
            statements.on = True
        outbox.on = True
        cpu, wall = time.process_time(), time.perf_counter()
        if profiler is not None:
            profiler.enable()
        await drive(per_client)
        if profiler is not None:
            profiler.disable()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        outbox.on = False
        if statements is not None:
            statements.on = False
        sent = per_client * topts.clients
        threads = {
            name: round(1e6 * (spent - threads.get(name, 0.0)) / sent, 1)
            for name, spent in _thread_cpu().items()
        }
        result: dict[str, Any] = {
            "messages": sent,
            "cpu_us_per_message": round(1e6 * cpu / sent, 1),
            "messages_per_s": round(sent / wall, 1),
            "thread_cpu_us_per_message": threads,
            "generation_reads_per_message": round((getattr(config, "reads", 0) - reads) / sent, 3),
            "outbox_reads_per_message": {k: round(v / sent, 3) for k, v in outbox.counts.items()},
            "writes_per_commit": round(
                (writer.writes - writes) / max(1, writer.commits - commits), 1
            ),
        }
        if db is not None and db_before is not None:
            await asyncio.sleep(pgstats.FLUSH_SECONDS)
            result["database"] = pgstats.phase_figures(db_before, db.read(), sent)
            db.close()
        if statements is not None:
            result["statements_per_message"] = [
                [k, round(c, 3), round(r, 3)] for k, c, r in statements.per_message(sent)
            ]
        if profiler is not None:
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            stats.sort_stats("tottime").print_stats(30)
            result["cprofile"] = out.getvalue().splitlines()
        return result
    finally:
        await services.stop()


def _tune_collector() -> None:
    """The server's collector settings, where the code under test has them
    (``--flowhook-src``/``PYTHONPATH`` may point at an older tree)."""
    try:
        from flowhook.collector import tune_collector
    except ImportError:
        return
    tune_collector()


def _thread_cpu() -> dict[str, float]:
    """CPU seconds so far per thread of this process (a pool's threads summed)."""
    names = {str(t.native_id): t.name for t in threading.enumerate()}
    return procs.thread_cpu_seconds(os.getpid(), names)


def main(opts: Options, topts: TurnPathOptions) -> dict[str, Any]:
    configure_logging("warning")
    doc = base_doc(opts)
    doc["turnpath"] = {"options": topts.__dict__}
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="flowhook-turnpath-"))
        url = statements = None
        if opts.backend == "postgres":
            url = stack.enter_context(postgres_database(opts.pg_url))
            statements = stack.enter_context(StatementCount().installed())
        if topts.http:
            import uvloop

            receiver = Receiver(Path(tmp))
            stack.callback(receiver.close)
            doc["turnpath"].update(
                uvloop.run(measure(topts, Path(tmp), url, statements, receiver.url("/hook")))
            )
            doc["turnpath"]["received"] = receiver.total()
        else:
            doc["turnpath"].update(asyncio.run(measure(topts, Path(tmp), url, statements)))
    out = write_doc(doc, "-turnpath")
    r = doc["turnpath"]
    print(
        f"flowhook turn path without ingress HTTP ({topts.flow}, {r['messages']} messages, "
        f"{topts.clients} concurrent, users: {topts.users or 'one per session'}, "
        f"transcripts/statistics {'on' if topts.records else 'off'}, "
        f"transport: {'the delivery default to the receiver' if topts.http else 'instant'}): "
        f"{r['cpu_us_per_message']} µs CPU per message (all threads), "
        f"{r['messages_per_s']:,.0f} messages/s, {r['writes_per_commit']} writes per commit"
    )
    print(
        f"  CPU µs per message by thread: {r['thread_cpu_us_per_message']}; "
        f"configuration generation reads per message: {r['generation_reads_per_message']}"
    )
    print(f"  outbox reads per message: {r['outbox_reads_per_message']}")
    db = r.get("database")
    if db is not None:
        print(
            f"PostgreSQL: {1000 * db['cpu_ms_per_delivery']:.1f} µs CPU per message "
            f"(+{1000 * db['shared_cpu_ms_per_delivery']:.1f} WAL writer etc.); per message: "
            + ", ".join(f"{k} {v:g}" for k, v in db["per_delivery"].items())
        )
        for name, c in sorted(db["tables_per_delivery"].items()):
            print(f"    {name}: " + ", ".join(f"{k} {v:g}" for k, v in c.items()))
        print("statements per message (calls, rows):")
        for text, calls, rows in r.get("statements_per_message", []):
            print(f"  {calls:7.3f} {rows:7.3f}  {text}")
    for line in r.get("cprofile", []):
        print(line)
    print(f"results: {out.name}")
    return doc
