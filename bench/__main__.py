"""``python -m bench run [options]``; the other sub-commands are the bench's own child processes."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    args_in = sys.argv[1:] if argv is None else argv
    if args_in[:1] == ["failing"]:
        # Receivers down for long: its own options (``python -m bench failing -h``).
        from bench.failing import main as failing_main

        failing_main(args_in[1:])
        return
    parser = argparse.ArgumentParser(prog="python -m bench")
    sub = parser.add_subparsers(dest="cmd", required=True)

    run = sub.add_parser("run", help="run the whole benchmark and print the table")
    run.add_argument("--duration", type=float, default=10.0, help="seconds measured per phase")
    run.add_argument("--warmup", type=float, default=2.0, help="seconds before each phase")
    run.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    run.add_argument("--flows", default="echo,order-help", help="comma-separated flow names")
    run.add_argument(
        "--flows-dir",
        type=Path,
        default=None,
        help="flows dir of the server (default: the repository's flows/); "
        "bench/flows holds code-echo, a code node's cost",
    )
    run.add_argument("--sessions", type=int, default=1000)
    run.add_argument("--connections", type=int, default=64, help="closed-loop connections")
    run.add_argument("--open-connections", type=int, default=256, help="open-loop max")
    run.add_argument("--fraction", type=float, default=0.5, help="fixed load / saturation")
    run.add_argument(
        "--rate",
        type=float,
        default=None,
        help="fixed load in requests/s for every target (instead of --fraction)",
    )
    run.add_argument("--no-baseline", action="store_true")
    run.add_argument("--profile", action="store_true", help="add a py-spy profiled phase")
    run.add_argument(
        "--perf",
        action="store_true",
        help="add a phase sampled by Linux perf: CPU by code, system call and thread",
    )
    run.add_argument(
        "--flowhook-src",
        type=Path,
        default=None,
        help="bench the flowhook in this src/ dir (default: the installed working tree)",
    )
    run.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test")
    run.add_argument(
        "--processes",
        default="1",
        help="flowhook processes per target, comma-separated (e.g. 1,2; >1 needs postgres)",
    )
    run.add_argument(
        "--no-one-user", action="store_true", help="skip the one-user saturation phase"
    )
    run.add_argument(
        "--memory", action="store_true", help="add the memory measurements (see `memory`)"
    )
    run.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="then N more saturation phases per target, the targets taking turns; "
        "ratios per round and their median (bench/rounds.py)",
    )

    mem = sub.add_parser("memory", help="memory per idle session, RSS with N stored sessions")
    mem.add_argument("--sessions", type=int, default=20_000, help="idle sessions driven")
    mem.add_argument("--stored", type=int, default=100_000, help="stored sessions (0: skip)")
    mem.add_argument(
        "--small-cache",
        type=int,
        default=1_000,
        help="state-cache capacity of the 'evicted' run (0: skip it)",
    )
    mem.add_argument("--flow", default="order-help")

    soak = sub.add_parser("soak", help="fixed open-loop load for minutes, RSS sampled")
    soak.add_argument("--minutes", type=float, default=10.0)
    soak.add_argument("--fraction", type=float, default=0.5, help="load / saturation")
    soak.add_argument("--flow", default="order-help")
    soak.add_argument("--sessions", type=int, default=1000)
    soak.add_argument("--sample", type=float, default=10.0, help="seconds between RSS samples")
    soak.add_argument("--saturation", type=float, default=10.0, help="seconds of saturation")

    for p in (mem, soak):
        p.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
        p.add_argument("--connections", type=int, default=64, help="closed-loop connections")
        p.add_argument("--open-connections", type=int, default=256, help="open-loop max")
        p.add_argument("--flowhook-src", type=Path, default=None)
        p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test")

    code = sub.add_parser("code-call", help="cost of one code call in a worker process")
    code.add_argument("--calls", type=int, default=5000)
    code.add_argument("--concurrency", type=int, default=8)
    code.add_argument("--workers", type=int, default=2)

    wal = sub.add_parser("outcome-wal", help="SQLite WAL bytes per outcome update, 2 layouts")
    wal.add_argument("--rows", type=int, default=200)
    wal.add_argument("--body-chars", type=int, default=100_000)

    wr = sub.add_parser("writer", help="CPU per message of the group commit's SQL, one thread")
    wr.add_argument("--batches", type=int, default=300)
    wr.add_argument("--size", type=int, default=35, help="messages per batch")
    wr.add_argument("--rounds", type=int, default=5, help="fresh database each round")

    tp = sub.add_parser("turnpath", help="CPU per message of flowhook's own path, no HTTP")
    tp.add_argument("--messages", type=int, default=20_000)
    tp.add_argument("--sessions", type=int, default=1000)
    tp.add_argument("--users", type=int, default=0, help="0: one user per session")
    tp.add_argument("--clients", type=int, default=64, help="concurrent senders")
    tp.add_argument("--flow", default="echo")
    tp.add_argument(
        "--no-records", action="store_true", help="endpoint without transcripts and statistics"
    )
    tp.add_argument("--cprofile", action="store_true", help="cProfile the loop thread (CPU)")
    tp.add_argument(
        "--http", action="store_true", help="the real delivery transport to the bench receiver"
    )
    tp.add_argument(
        "--backend",
        choices=["sqlite", "postgres"],
        default="sqlite",
        help="postgres: a scratch database; adds PostgreSQL's CPU and the statements per message",
    )
    tp.add_argument("--pg-url", default=None, help="PostgreSQL admin URL (default: the bench's)")

    trn = sub.add_parser("transport", help="CPU per webhook POST of each delivery transport")
    trn.add_argument("--posts", type=int, default=20_000, help="POSTs measured per round")
    trn.add_argument("--concurrency", type=int, default=64)
    trn.add_argument("--rounds", type=int, default=3, help="rounds, transports taking turns")
    trn.add_argument("--warmup", type=int, default=2_000, help="POSTs before each round")
    trn.add_argument("--transports", default="aiohttp,lean", help="comma-separated")

    rcv = sub.add_parser("receiver", help="(internal) the webhook receiver")
    rcv.add_argument("--port", type=int, required=True)

    base = sub.add_parser("baseline", help="(internal) the baseline server")
    base.add_argument("--port", type=int, required=True)
    base.add_argument("--target", required=True)

    gen = sub.add_parser("loadgen", help="(internal) the load generator")
    gen.add_argument("--port", type=int, required=True)
    gen.add_argument("--path", required=True)
    gen.add_argument("--sessions", type=int, required=True)
    gen.add_argument("--tag", required=True)
    gen.add_argument("--warmup", type=float, required=True)
    gen.add_argument("--duration", type=float, required=True)
    gen.add_argument("--connections", type=int, required=True)
    gen.add_argument("--rate", type=float, default=None)
    gen.add_argument("--count", type=int, default=None, help="stop after this many requests")
    gen.add_argument("--out", type=Path, required=True)
    gen.add_argument("--users", type=int, default=0, help="0: one user per session")
    gen.add_argument("--user-tag", default=None)

    act = sub.add_parser(
        "pg-activity", help="sample what the bench's PostgreSQL connections are doing"
    )
    act.add_argument("--seconds", type=float, default=8.0)
    act.add_argument("--interval", type=float, default=0.003, help="seconds between samples")
    act.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    act.add_argument("--database-prefix", default="flowhook_bench_")

    chk = sub.add_parser(
        "profiler-check", help="whether py-spy charges samples where the time goes, here"
    )
    chk.add_argument("--seconds", type=float, default=8.0)

    summ = sub.add_parser("profile-summary", help="summarise a py-spy --format raw file")
    summ.add_argument("file", type=Path)

    args = parser.parse_args(argv)
    command = shlex.join(["python", "-m", "bench", *(argv or sys.argv[1:])])
    if args.cmd in ("memory", "soak"):
        from bench.runner import Options

        opts = Options(
            backend=args.backend,
            flows=[args.flow],
            connections=args.connections,
            open_connections=args.open_connections,
            baseline=False,
            pg_url=args.pg_url,
            flowhook_src=None if args.flowhook_src is None else args.flowhook_src.resolve(),
            command=command,
        )
        if args.cmd == "memory":
            from bench.memory import MemoryOptions
            from bench.memory import main as memory_main

            memory_main(
                opts,
                MemoryOptions(
                    sessions=args.sessions,
                    stored=args.stored,
                    small_cache=args.small_cache,
                    flow=args.flow,
                ),
            )
        else:
            from bench.soak import SoakOptions
            from bench.soak import main as soak_main

            soak_main(
                opts,
                SoakOptions(
                    minutes=args.minutes,
                    fraction=args.fraction,
                    flow=args.flow,
                    sessions=args.sessions,
                    sample_s=args.sample,
                    saturation_s=args.saturation,
                ),
            )
    elif args.cmd == "run":
        from bench.memory import MemoryOptions
        from bench.runner import Options
        from bench.runner import run as run_bench

        run_bench(
            Options(
                duration=args.duration,
                warmup=args.warmup,
                backend=args.backend,
                flows=[f for f in args.flows.split(",") if f],
                sessions=args.sessions,
                connections=args.connections,
                open_connections=args.open_connections,
                open_fraction=args.fraction,
                open_rate=args.rate,
                baseline=not args.no_baseline,
                profile=args.profile,
                perf=args.perf,
                pg_url=args.pg_url,
                flowhook_src=None if args.flowhook_src is None else args.flowhook_src.resolve(),
                flows_dir=None if args.flows_dir is None else args.flows_dir.resolve(),
                command=command,
                memory=MemoryOptions() if args.memory else None,
                processes=[int(n) for n in args.processes.split(",") if n],
                one_user=not args.no_one_user,
                rounds=max(1, args.rounds),
            )
        )
    elif args.cmd == "code-call":
        from bench.isolation import main as code_call_main

        code_call_main(args.calls, args.concurrency, args.workers)
    elif args.cmd == "outcome-wal":
        from bench.outcome_wal import main as outcome_wal_main

        outcome_wal_main(args.rows, args.body_chars)
    elif args.cmd == "writer":
        from bench.writer import main as writer_main

        writer_main(args.batches, args.size, args.rounds)
    elif args.cmd == "turnpath":
        from bench.runner import Options
        from bench.turnpath import TurnPathOptions
        from bench.turnpath import main as turnpath_main

        opts = Options(baseline=False, command=command, flows=[args.flow], backend=args.backend)
        if args.pg_url:
            opts.pg_url = args.pg_url
        turnpath_main(
            opts,
            TurnPathOptions(
                messages=args.messages,
                sessions=args.sessions,
                users=args.users,
                clients=args.clients,
                flow=args.flow,
                records=not args.no_records,
                cprofile=args.cprofile,
                http=args.http,
            ),
        )
    elif args.cmd == "transport":
        from bench.runner import Options
        from bench.transport import TransportOptions
        from bench.transport import main as transport_main

        transport_main(
            Options(baseline=False, command=command),
            TransportOptions(
                posts=args.posts,
                concurrency=args.concurrency,
                rounds=args.rounds,
                warmup=args.warmup,
                transports=tuple(t for t in args.transports.split(",") if t),
            ),
        )
    elif args.cmd == "receiver":
        from bench.receiver import main as receiver_main

        receiver_main("127.0.0.1", args.port)
    elif args.cmd == "baseline":
        from bench.baseline import main as baseline_main

        baseline_main("127.0.0.1", args.port, args.target)
    elif args.cmd == "loadgen":
        from bench.loadgen import main as loadgen_main

        loadgen_main(
            "127.0.0.1",
            args.port,
            args.path,
            sessions=args.sessions,
            tag=args.tag,
            warmup=args.warmup,
            duration=args.duration,
            connections=args.connections,
            rate=args.rate,
            out=args.out,
            count=args.count,
            users=args.users,
            user_tag=args.user_tag,
        )
    elif args.cmd == "pg-activity":
        from bench.pgactivity import report, sample

        taken, counts = sample(args.pg_url, args.seconds, args.interval, args.database_prefix)
        print("\n".join(report(taken, counts)))
    elif args.cmd == "profiler-check":
        from bench.profiler_check import check

        print("\n".join(check(args.seconds)))
    elif args.cmd == "profile-summary":
        from bench.profile import summarise

        print("\n".join(summarise(args.file.read_text())["text"]))


if __name__ == "__main__":
    main()
