"""The orchestrator: starts receiver, baseline and flowhook, drives every phase, reports."""

from __future__ import annotations

import base64
import contextlib
import functools
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from bench import pgstats, procs
from bench.report import print_table
from bench.rounds import print_rounds, run_rounds
from bench.stats import summary_ms
from flowhook.nlu.bench import time_matching

if TYPE_CHECKING:
    from bench.memory import MemoryOptions

ADMIN_TOKEN = secrets.token_hex(16)  # a fresh admin token for every run
ALLOW_CIDRS = "127.0.0.0/8,::1/128"
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
RESULTS = procs.REPO / "bench" / "results"
SATURATION_ONE_USER = "saturation 1 user"


@dataclass
class Options:
    duration: float = 10.0
    warmup: float = 2.0
    backend: str = "sqlite"
    flows: list[str] = field(default_factory=lambda: ["echo", "order-help"])
    sessions: int = 1000
    connections: int = 64
    open_connections: int = 256
    open_fraction: float = 0.5
    # The fixed phase at this many requests a second instead of a fraction of the
    # target's own saturation: two versions compared at the same load.
    open_rate: float | None = None
    baseline: bool = True
    profile: bool = False
    perf: bool = False  # add a phase sampled by Linux perf (bench/perf_profile.py)
    pg_url: str = PG_ADMIN_URL
    drain_timeout: float = 60.0
    flowhook_src: Path | None = None
    flows_dir: Path | None = None  # default: the repository's flows/
    command: str = ""
    memory: MemoryOptions | None = None  # run --memory: add the memory measurements
    # flowhook processes per target (one target per count; more than 1: PostgreSQL)
    processes: list[int] = field(default_factory=lambda: [1])
    one_user: bool = True  # add a saturation phase with every session of one userId
    # more than 1: the targets stay up and their saturation phases then take turns this
    # many times (bench/rounds.py)
    rounds: int = 1


@dataclass
class Target:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    path: str
    workdir: Path
    # Further processes of the same target (several flowhook processes, one database):
    # the load is split over all ports, CPU summed over all processes.
    more: list[tuple[subprocess.Popen[bytes], int]] = field(default_factory=list)
    database_url: str | None = None  # PostgreSQL: the scratch database (its CPU is measured)

    @property
    def pids(self) -> list[int]:
        return [self.proc.pid, *(p.pid for p, _ in self.more)]

    @property
    def ports(self) -> list[int]:
        return [self.port, *(port for _, port in self.more)]

    def cpu_seconds(self) -> float:
        """The server processes' CPU, their child processes' included."""
        return sum(procs.tree_cpu_seconds(pid) for pid in self.pids)

    def own_cpu_seconds(self) -> float:
        """The server processes' own CPU, without their child processes'."""
        return sum(procs.cpu_seconds(pid) for pid in self.pids)


class Receiver:
    def __init__(self, workdir: Path) -> None:
        self.port = procs.free_port()
        self.log = (workdir / "receiver.log").open("w")
        self.proc = procs.spawn(procs.bench_cmd("receiver", "--port", str(self.port)), log=self.log)
        try:
            procs.wait_http(self.url("/__bench/count"), self.proc)
        except Exception:
            self.close()
            raise

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def total(self) -> int:
        _, doc = procs.http_json("GET", self.url("/__bench/count"))
        return int(doc["total"])

    def collect(self) -> list[tuple[float, str]]:
        _, doc = procs.http_json("GET", self.url("/__bench/collect"), timeout=60)
        return [(float(t), str(tr)) for t, tr in doc]

    def close(self) -> None:
        procs.stop(self.proc)
        self.log.close()


# -- targets --------------------------------------------------------------------------------


@contextlib.contextmanager
def baseline_target(receiver: Receiver, workdir: Path) -> Iterator[Target]:
    port = procs.free_port()
    with (workdir / "baseline.log").open("w") as log:
        proc = procs.spawn(
            procs.bench_cmd("baseline", "--port", str(port), "--target", receiver.url("/hook")),
            log=log,
        )
        try:
            procs.wait_http(f"http://127.0.0.1:{port}/healthz", proc)
            yield Target("baseline", proc, port, "/endpoint/baseline", workdir)
        finally:
            procs.stop(proc)


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A scratch database, created for the bench and dropped afterwards."""
    import psycopg

    name = f"flowhook_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # the name is ours, not user input
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def flowhook_target(
    flow: str,
    receiver: Receiver,
    workdir: Path,
    opts: Options,
    *,
    data_dir: Path | None = None,
    endpoint_path: str | None = None,
    state_cache_size: int | None = None,
    log_name: str | None = None,
    processes: int = 1,
) -> Iterator[Target]:
    """A ``flowhook serve`` with one endpoint running ``flow``.

    ``data_dir`` and ``endpoint_path`` restart a server on an existing data dir
    (the endpoint is then not created again). ``state_cache_size`` starts it with
    another capacity for the runner's session-state and profile LRU caches
    (``SessionRunner(state_cache_size=...)``, default 100,000, not a setting):
    the default of that keyword argument is replaced before the CLI runs.
    ``processes`` > 1 starts that many processes on one PostgreSQL database (each its
    own data dir and port, one secret key) and waits until each holds partitions.
    """
    if processes > 1 and opts.backend != "postgres":
        raise ValueError("several processes share one database only on PostgreSQL")
    data_dir = data_dir or workdir / f"data-{flow}"
    with contextlib.ExitStack() as stack:
        db_args: list[str] = []
        database_url = None
        if opts.backend == "postgres":
            database_url = stack.enter_context(postgres_database(opts.pg_url))
            db_args = ["--database-url", database_url]
        # The working tree's flowhook by default; with --flowhook-src, another
        # checkout's src/ (e.g. a `git archive` of a commit) put first on the path.
        env = {
            "FLOWHOOK_ADMIN_TOKEN": ADMIN_TOKEN,
            "FLOWHOOK_LOG_LEVEL": "warning",
            "FLOWHOOK_WEBHOOK_ALLOW_CIDRS": ALLOW_CIDRS,
        }
        if processes > 1:  # one key for the endpoint secrets all of them read
            env["FLOWHOOK_SECRET_KEY"] = base64.b64encode(os.urandom(32)).decode()
        exe = [str(Path(sys.executable).parent / "flowhook")]
        flows_dir = procs.REPO / "flows"
        launcher = "from flowhook.cli.main import app; app()"
        if state_cache_size is not None:
            launcher = (
                "import flowhook.sessions.runner as r; "
                "r.SessionRunner.__init__.__kwdefaults__['state_cache_size'] = "
                f"{int(state_cache_size)}; {launcher}"
            )
            exe = [sys.executable, "-c", launcher]
        if opts.flowhook_src is not None:
            env["PYTHONPATH"] = str(opts.flowhook_src)
            exe = [sys.executable, "-c", launcher]
            flows_dir = opts.flowhook_src.parent / "flows"
        if opts.flows_dir is not None:
            flows_dir = opts.flows_dir
        started: list[tuple[subprocess.Popen[bytes], int]] = []
        for i in range(processes):
            name = log_name or f"flowhook-{flow}.log"
            log = stack.enter_context((workdir / (name if i == 0 else f"{name}.{i + 1}")).open("a"))
            port = procs.free_port()
            proc = procs.spawn(
                [
                    *exe,
                    "--data-dir",
                    str(data_dir if i == 0 else data_dir.with_name(f"{data_dir.name}-{i + 1}")),
                    "--flows-dir",
                    str(flows_dir),
                    *db_args,
                    "serve",
                    "--port",
                    str(port),
                ],
                env=env,
                log=log,
            )
            stack.callback(procs.stop, proc, 60.0)
            started.append((proc, port))
        for proc, port in started:
            procs.wait_http(f"http://127.0.0.1:{port}/healthz", proc, timeout=120.0)
        proc, port = started[0]
        base = f"http://127.0.0.1:{port}"
        if endpoint_path is None:
            status, doc = procs.http_json(
                "POST",
                f"{base}/api/v1/endpoints",
                {"name": f"bench-{flow}", "flow": flow, "webhookUrl": receiver.url("/hook")},
                {"Authorization": f"Bearer {ADMIN_TOKEN}"},
            )
            if status != 201:
                raise RuntimeError(f"creating the endpoint failed: {status} {doc}")
            endpoint_path = "/" + str(doc["endpointUrl"]).split("/", 3)[3]
        if processes > 1:
            wait_for_partitions(base, processes)
        suffix = "" if processes == 1 else f" x{processes}"
        yield Target(
            f"flowhook/{flow}{suffix}",
            proc,
            port,
            endpoint_path,
            workdir,
            started[1:],
            database_url=database_url,
        )


def wait_for_partitions(base: str, processes: int, timeout: float = 120.0) -> None:
    """Wait until every process holds a share of the partitions and none is unowned."""
    deadline = time.monotonic() + timeout
    view: Any = None
    while time.monotonic() < deadline:
        _, view = procs.http_json(
            "GET", f"{base}/api/v1/cluster", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        workers = view.get("workers", []) if isinstance(view, dict) else []
        if (
            len(workers) == processes
            and view.get("unownedPartitions") == 0
            and all(w["partitions"] > 0 for w in workers)
        ):
            return
        time.sleep(0.5)
    raise TimeoutError(f"the partitions were not shared out within {timeout}s: {view}")


# -- phases ---------------------------------------------------------------------------------


def loadgen_args(
    target: Target,
    opts: Options,
    tag: str,
    rate: float | None,
    out: Path,
    *,
    sessions: int | None = None,
    count: int | None = None,
    warmup: float | None = None,
    duration: float | None = None,
    users: int = 0,
    port: int | None = None,
    connections: int | None = None,
    user_tag: str | None = None,
) -> list[str]:
    if connections is None:
        connections = opts.connections if rate is None else opts.open_connections
    args = [
        "loadgen",
        "--port",
        str(target.port if port is None else port),
        "--path",
        target.path,
        "--sessions",
        str(opts.sessions if sessions is None else sessions),
        "--tag",
        tag,
        "--warmup",
        str(opts.warmup if warmup is None else warmup),
        "--duration",
        str(opts.duration if duration is None else duration),
        "--connections",
        str(connections),
        "--out",
        str(out),
        "--users",
        str(users),
    ]
    if rate is not None:
        args += ["--rate", f"{rate:.1f}"]
    if count is not None:
        args += ["--count", str(count)]
    if user_tag is not None:
        args += ["--user-tag", user_tag]
    return procs.bench_cmd(*args)


def run_loadgen(
    target: Target,
    opts: Options,
    tag: str,
    rate: float | None,
    out: Path,
    *,
    sessions: int | None = None,
    count: int | None = None,
    warmup: float | None = None,
    duration: float | None = None,
    users: int = 0,
) -> dict[str, Any]:
    """One load generator per port of the target, at once; their records merged.

    With several ports, connections, rate and count are split evenly, each generator
    drives sessions of its own (tag suffix) and the users are shared (one user is
    one user across processes)."""
    ports = target.ports
    n = len(ports)
    connections = opts.connections if rate is None else opts.open_connections
    outs = [out if n == 1 else out.with_suffix(f".{i}.json") for i in range(n)]
    children = [
        subprocess.Popen(
            loadgen_args(
                target,
                opts,
                tag if n == 1 else f"{tag}-p{i}",
                None if rate is None else rate / n,
                outs[i],
                sessions=sessions,
                count=None if count is None else max(1, count // n),
                warmup=warmup,
                duration=duration,
                users=users,
                port=port,
                connections=max(1, -(-connections // n)),
                user_tag=tag,
            ),
            cwd=procs.REPO,
        )
        for i, port in enumerate(ports)
    ]
    for child in children:
        if child.wait() != 0:
            raise RuntimeError(f"load generator exited with {child.returncode}")
    docs: list[dict[str, Any]] = []
    for path in outs:
        docs.append(orjson.loads(path.read_bytes()))
        path.unlink()
    if n == 1:
        return docs[0]
    return {
        "window": [min(d["window"][0] for d in docs), max(d["window"][1] for d in docs)],
        "errors": sum(d["errors"] for d in docs),
        "cpu_seconds": round(sum(d["cpu_seconds"] for d in docs), 3),
        "max_rss_kib": max(d["max_rss_kib"] for d in docs),
        "records": [r for d in docs for r in d["records"]],
    }


def drain(receiver: Receiver, timeout: float, quiet: float = 1.5) -> float:
    """Wait until deliveries stop arriving; returns the seconds waited."""
    started = time.monotonic()
    last = receiver.total()
    still_since = time.monotonic()
    while time.monotonic() - started < timeout:
        time.sleep(0.25)
        now = receiver.total()
        if now != last:
            last, still_since = now, time.monotonic()
        elif time.monotonic() - still_since >= quiet:
            break
    return round(time.monotonic() - started, 2)


def run_phase(
    target: Target,
    receiver: Receiver,
    opts: Options,
    phase: str,
    rate: float | None,
    *,
    users: int = 0,
) -> dict[str, Any]:
    """``users``: 0 gives each session its own user, 1 puts every session on one user."""
    receiver.collect()  # start from an empty record
    tag = f"{phase.split()[0]}-{uuid.uuid4().hex[:6]}"
    cpu_srv, cpu_rcv = target.cpu_seconds(), procs.cpu_seconds(receiver.proc.pid)
    own = target.own_cpu_seconds()
    names = procs.python_thread_names(target.proc.pid)
    threads = procs.thread_cpu_seconds(target.proc.pid, names)
    db = pgstats.meter(target.database_url)
    db_before = None if db is None else db.read()
    busy, wall = procs.machine_busy_seconds(), time.monotonic()
    load = run_loadgen(target, opts, tag, rate, target.workdir / f"{tag}.json", users=users)
    drained = drain(receiver, opts.drain_timeout)
    busy, wall = procs.machine_busy_seconds() - busy, time.monotonic() - wall
    cpu_srv = target.cpu_seconds() - cpu_srv
    own = target.own_cpu_seconds() - own
    cpu_rcv = procs.cpu_seconds(receiver.proc.pid) - cpu_rcv
    threads = {
        name: round(cpu - threads.get(name, 0.0), 2)
        for name, cpu in procs.thread_cpu_seconds(target.proc.pid, names).items()
    }
    deliveries = receiver.collect()
    result = analyse(phase, rate, opts, load, deliveries, drained, cpu_srv, cpu_rcv)
    result["users"] = "one per session" if users == 0 else users
    result["server_processes"] = len(target.pids)
    result["cpu_s"]["server_threads"] = {k: v for k, v in threads.items() if v > 0}
    if cpu_srv - own >= 0.01:  # the servers' own child processes
        result["cpu_s"]["server_threads"]["child processes"] = round(cpu_srv - own, 2)
    other = busy - cpu_srv - cpu_rcv - load["cpu_seconds"]
    if db is not None and db_before is not None:
        time.sleep(pgstats.FLUSH_SECONDS)  # the backends' counters reach the views
        result["database"] = pgstats.phase_figures(db_before, db.read(), result["deliveries_total"])
        db.close()
        # PostgreSQL's own CPU is the bench's, not the neighbours'.
        other -= sum(result["database"]["cpu_s"].values())
    result["cpu_s"]["other_processes"] = round(max(0.0, other), 2)
    result["cpu_s"]["wall_s"] = round(wall, 2)
    result["machine_busy_cores"] = round(busy / wall, 2)
    return result


def analyse(
    phase: str,
    rate: float | None,
    opts: Options,
    load: dict[str, Any],
    deliveries: list[tuple[float, str]],
    drained: float,
    cpu_server: float,
    cpu_receiver: float,
) -> dict[str, Any]:
    start, end = load["window"]
    duration = end - start
    records = [r for r in load["records"] if r[0] < end]
    ok = [r for r in records if 200 <= r[2] < 300]
    accepted_at = {r[3]: (r[0], r[1]) for r in ok}
    in_window = sum(1 for t, _ in deliveries if start <= t < end)
    e2e_accept: list[float] = []
    e2e_send: list[float] = []
    seen: set[str] = set()
    for t, trace in deliveries:
        sent = accepted_at.get(trace)
        if sent is not None:
            e2e_send.append(t - sent[0])
            e2e_accept.append(t - sent[1])
            seen.add(trace)
    return {
        "phase": phase,
        "offered": "closed loop" if rate is None else round(rate, 1),
        "connections": opts.connections if rate is None else opts.open_connections,
        "duration_s": round(duration, 2),
        "sent": len(records),
        "accepted": len(ok),
        "rejected": len(records) - len(ok),
        "errors": load["errors"],
        "accepted_per_s": round(len(ok) / duration, 1),
        "delivered_per_s": round(in_window / duration, 1),
        "deliveries_total": len(deliveries),
        "undelivered_after_drain": len(accepted_at.keys() - seen),
        "drain_s": drained,
        "ingress_ms": summary_ms([r[1] - r[0] for r in ok]),
        "e2e_ms": summary_ms(e2e_accept),
        "e2e_from_send_ms": summary_ms(e2e_send),
        "cpu_ms_per_delivery": {
            "server": round(1000 * cpu_server / max(1, len(deliveries)), 3),
            "receiver": round(1000 * cpu_receiver / max(1, len(deliveries)), 3),
            "loadgen": round(1000 * load["cpu_seconds"] / max(1, len(records)), 3),
        },
        "cpu_s": {
            "server": round(cpu_server, 2),
            "receiver": round(cpu_receiver, 2),
            "loadgen": load["cpu_seconds"],
        },
    }


def profile(target: Target, receiver: Receiver, opts: Options, stamp: str) -> dict[str, Any]:
    """An extra, profiled saturation phase (its figures are not reported as results)."""
    from bench.profile import summarise

    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    raw = RESULTS / f"{stamp}-{target.name.replace('/', '-')}-profile.txt"
    spy = subprocess.Popen(
        [
            pyspy,
            "record",
            "--pid",
            str(target.proc.pid),
            "--rate",
            "200",
            "--duration",
            str(int(opts.warmup + opts.duration)),
            "--format",
            "raw",
            "--threads",
            "--gil",
            # Sampled without stopping the process: stopped, a thread is caught at its
            # next system call far more often than elsewhere (bench/profiler_check.py).
            "--nonblocking",
            "-o",
            str(raw),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    phase = run_phase(target, receiver, opts, "profiled", None)
    spy.wait(60)
    result: dict[str, Any] = {"file": str(raw.relative_to(procs.REPO)), "phase": phase}
    if raw.exists():
        result["summary"] = summarise(raw.read_text())
    return result


def perf_phase(target: Target, receiver: Receiver, opts: Options, stamp: str) -> dict[str, Any]:
    """An extra saturation phase sampled by Linux perf (its figures are not results)."""
    from bench import perf_profile

    why_not = perf_profile.available()
    if why_not is not None:
        return {"skipped": why_not}
    data = RESULTS / f"{stamp}-{target.name.replace('/', '-')}-perf.data"
    names = procs.python_thread_names(target.proc.pid)
    perf = perf_profile.record(target.pids, opts.warmup + opts.duration, data)
    phase = run_phase(target, receiver, opts, "perf sampled", None)
    perf.wait(120)
    result: dict[str, Any] = {"file": str(data.relative_to(procs.REPO)), "phase": phase}
    if data.exists():
        result["summary"] = perf_profile.summarise(data, names)
    return result


def bench_target(target: Target, receiver: Receiver, opts: Options, stamp: str) -> dict[str, Any]:
    print(f"== {target.name}", file=sys.stderr, flush=True)
    rss_before = procs.rss_kib(target.proc.pid)
    saturation = run_phase(target, receiver, opts, "saturation", None)
    print(f"   saturation: {_brief(saturation)}", file=sys.stderr, flush=True)
    phases = [saturation]
    if opts.one_user:
        # The same load, every session of one userId (a bridge, a voice gateway).
        one_user = run_phase(target, receiver, opts, SATURATION_ONE_USER, None, users=1)
        print(f"   saturation, one user: {_brief(one_user)}", file=sys.stderr, flush=True)
        phases.append(one_user)
    rate = opts.open_fraction * min(saturation["accepted_per_s"], saturation["delivered_per_s"])
    if opts.open_rate is not None:
        rate = opts.open_rate
    fixed = run_phase(target, receiver, opts, "fixed", max(rate, 1.0))
    print(f"   fixed load: {_brief(fixed)}", file=sys.stderr, flush=True)
    phases.append(fixed)
    result: dict[str, Any] = {
        "target": target.name,
        "phases": phases,
        "rss_before": rss_before,
        "rss_after": procs.rss_kib(target.proc.pid),
    }
    if opts.profile:
        result["profile"] = profile(target, receiver, opts, stamp)
    if opts.perf:
        result["perf"] = perf_phase(target, receiver, opts, stamp)
    return result


def _brief(p: dict[str, Any]) -> str:
    return (
        f"accepted {p['accepted_per_s']}/s delivered {p['delivered_per_s']}/s "
        f"ingress p99 {p['ingress_ms']['p99']} ms e2e p99 {p['e2e_ms']['p99']} ms"
    )


def base_doc(opts: Options) -> dict[str, Any]:
    """What every result file starts with: when, what, where, with which options."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(parents=True, exist_ok=True)
    return {
        "timestamp": stamp,
        "command": opts.command,
        "git": procs.git_commit(),
        "machine": procs.machine(),
        "options": {
            "duration_s": opts.duration,
            "warmup_s": opts.warmup,
            "backend": opts.backend,
            "flows": opts.flows,
            "sessions": opts.sessions,
            "connections_closed_loop": opts.connections,
            "connections_open_loop_max": opts.open_connections,
            "open_loop_fraction_of_saturation": opts.open_fraction,
            "open_loop_rate": opts.open_rate,
            "flowhook_src": None if opts.flowhook_src is None else str(opts.flowhook_src),
        },
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
    }


def write_doc(doc: dict[str, Any], suffix: str = "") -> Path:
    out = RESULTS / f"{doc['timestamp']}{suffix}.json"
    out.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    return out


def dump_logs(workdir: Path) -> None:
    for log in sorted(workdir.glob("*.log")):
        tail = log.read_text(errors="replace")[-3000:]
        print(f"--- {log.name}\n{tail}", file=sys.stderr)


def run(opts: Options) -> dict[str, Any]:
    doc = base_doc(opts)
    stamp = doc["timestamp"]
    # Measured in this process before the load phases, so it competes with nothing.
    doc["nlu_ms_per_input"] = time_matching(intents=50, examples=10) / 1000.0
    doc["nlu_note"] = "built-in intent matcher, 50 intents x 10 example sentences"
    doc["targets"] = []
    with tempfile.TemporaryDirectory(prefix="flowhook-bench-") as tmp:
        workdir = Path(tmp)
        receiver = Receiver(workdir)
        try:
            with contextlib.ExitStack() as stack:
                # With rounds every target stays up for them; otherwise each stops after
                # its phases, so that nothing else of the bench's runs beside it.
                kept: dict[str, Target] = {}
                starts: list[Callable[[], contextlib.AbstractContextManager[Target]]] = []
                if opts.baseline:
                    starts.append(functools.partial(baseline_target, receiver, workdir))
                for flow in opts.flows:
                    for count in opts.processes:
                        starts.append(
                            functools.partial(
                                flowhook_target, flow, receiver, workdir, opts, processes=count
                            )
                        )
                for start in starts:
                    with contextlib.ExitStack() as own:
                        target = (stack if opts.rounds > 1 else own).enter_context(start())
                        doc["targets"].append(bench_target(target, receiver, opts, stamp))
                        kept[target.name] = target
                if opts.rounds > 1:
                    doc["rounds"] = run_rounds(
                        list(kept),
                        opts.rounds,
                        opts.one_user,
                        lambda name, users: run_phase(
                            kept[name],
                            receiver,
                            opts,
                            "saturation" if users == 0 else SATURATION_ONE_USER,
                            None,
                            users=users,
                        ),
                    )
            if opts.memory is not None:
                from bench.memory import measure

                doc["memory"] = measure(receiver, workdir, opts, opts.memory)
        except Exception:
            dump_logs(workdir)
            raise
        finally:
            receiver.close()
    doc["ratios"] = ratios(doc["targets"])
    out = write_doc(doc)
    print_table(doc)
    if "rounds" in doc:
        print_rounds(doc["rounds"])
    print(f"\nresults: {out.relative_to(procs.REPO)}")
    return doc


def ratios(targets: list[dict[str, Any]]) -> dict[str, Any]:
    """Figures only comparable within one run (the machine is shared and noisy):
    throughput and server CPU per delivered output against the baseline, one user
    against one user per session, and several processes against one."""
    by_name = {t["target"]: t for t in targets}
    out: dict[str, Any] = {}
    base = by_name.get("baseline")
    for name, t in by_name.items():
        sat = t["phases"][0]
        row: dict[str, Any] = {
            "delivered_per_s": sat["delivered_per_s"],
            "server_ms_per_output": sat["cpu_ms_per_delivery"]["server"],
            "outputs_per_server_cpu_s": _per_cpu_s(sat),
        }
        if "database" in sat:
            row["database_ms_per_output"] = sat["database"]["cpu_ms_per_delivery"]
            row["outputs_per_server_and_database_cpu_s"] = _per_total_cpu_s(sat)
        one = next((p for p in t["phases"] if p["phase"] == SATURATION_ONE_USER), None)
        if one is not None and sat["delivered_per_s"]:
            row["one_user_delivered_per_s"] = one["delivered_per_s"]
            row["one_user_over_many"] = round(one["delivered_per_s"] / sat["delivered_per_s"], 3)
        if base is not None and name != "baseline":
            b = base["phases"][0]
            if b["delivered_per_s"]:
                row["throughput_over_baseline"] = round(
                    sat["delivered_per_s"] / b["delivered_per_s"], 3
                )
            if b["cpu_ms_per_delivery"]["server"]:
                row["cpu_per_output_over_baseline"] = round(
                    sat["cpu_ms_per_delivery"]["server"] / b["cpu_ms_per_delivery"]["server"], 3
                )
        single = by_name.get(name.split(" x")[0]) if " x" in name else None
        if single is not None:
            s1 = single["phases"][0]
            if s1["delivered_per_s"]:
                row["throughput_over_one_process"] = round(
                    sat["delivered_per_s"] / s1["delivered_per_s"], 3
                )
            if _per_cpu_s(s1):
                row["per_cpu_s_over_one_process"] = round(_per_cpu_s(sat) / _per_cpu_s(s1), 3)
            if _per_total_cpu_s(s1) and _per_total_cpu_s(sat):
                row["per_total_cpu_s_over_one_process"] = round(
                    _per_total_cpu_s(sat) / _per_total_cpu_s(s1), 3
                )
        out[name] = row
    return out


def _per_cpu_s(phase: dict[str, Any]) -> float:
    """Outputs delivered per second of server CPU (all server processes)."""
    cpu = phase["cpu_s"]["server"]
    return round(phase["deliveries_total"] / cpu, 1) if cpu else 0.0


def _per_total_cpu_s(phase: dict[str, Any]) -> float:
    """Outputs delivered per second of server and database CPU (PostgreSQL)."""
    cpu = phase["cpu_s"]["server"] + phase.get("database", {}).get("cpu_s", {}).get("backends", 0)
    return round(phase["deliveries_total"] / cpu, 1) if "database" in phase and cpu else 0.0
