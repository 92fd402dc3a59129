"""The printed table of a bench run."""

from __future__ import annotations

from typing import Any


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.2f}"
    return str(value)


def print_table(doc: dict[str, Any]) -> None:
    m = doc["machine"]
    o = doc["options"]
    print(
        f"\nflowhook bench {doc['timestamp']}  git {doc['git']}  backend {o['backend']}  "
        f"{m['nproc']} x {m['cpu_model']}  Python {m['python']}"
    )
    fixed = (
        f"{o['open_loop_fraction_of_saturation']:g} x saturation"
        if o.get("open_loop_rate") is None
        else f"{o['open_loop_rate']:g}/s"
    )
    print(
        f"{o['duration_s']:g} s per phase after {o['warmup_s']:g} s warm-up, "
        f"{o['sessions']} sessions, closed loop {o['connections_closed_loop']} connections, "
        f"fixed load = {fixed}"
    )
    header = (
        "target",
        "phase",
        "offered/s",
        "accepted/s",
        "delivered/s",
        "ingress p50",
        "ingress p99",
        "e2e p50",
        "e2e p99",
        "send>hook p99",
        "lost",
        "srv ms/out",
        "db ms/out",
        "other CPU",
    )
    rows: list[tuple[str, ...]] = []
    for t in doc["targets"]:
        for p in t["phases"]:
            rows.append(
                (
                    t["target"],
                    p["phase"],
                    _fmt(p["offered"]),
                    _fmt(p["accepted_per_s"]),
                    _fmt(p["delivered_per_s"]),
                    _fmt(p["ingress_ms"]["p50"]),
                    _fmt(p["ingress_ms"]["p99"]),
                    _fmt(p["e2e_ms"]["p50"]),
                    _fmt(p["e2e_ms"]["p99"]),
                    _fmt(p["e2e_from_send_ms"]["p99"]),
                    str(p["undelivered_after_drain"] + p["errors"] + p["rejected"]),
                    _fmt(p["cpu_ms_per_delivery"]["server"]),
                    _fmt(p.get("database", {}).get("cpu_ms_per_delivery")),
                    f"{p['cpu_s']['other_processes'] / p['cpu_s']['wall_s']:.2f}",
                )
            )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for r in rows:
        print(
            "  ".join(
                (c.ljust(w) if i < 2 else c.rjust(w))
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
    print(
        "(latencies in ms; e2e = received by the webhook - 202 received by the client;\n"
        " send>hook = received by the webhook - request sent; lost = errors + non-2xx +\n"
        " accepted but never delivered; srv ms/out = server CPU ms per delivered output;\n"
        " db ms/out = CPU ms of PostgreSQL's processes serving the bench's database per\n"
        " delivered output; other CPU = cores used by processes outside the bench during\n"
        " the phase)"
    )
    print_database(doc)
    for t in doc["targets"]:
        before, after = t["rss_before"], t["rss_after"]
        print(
            f"RSS {t['target']}: {before['rss_kib'] / 1024:.1f} MiB before, "
            f"{after['rss_kib'] / 1024:.1f} MiB after (peak {after['peak_rss_kib'] / 1024:.1f} MiB)"
        )
    print_ratios(doc["ratios"])
    nlu = doc.get("nlu_ms_per_input")
    if nlu is None:
        print(f"NLU time per input: n/a ({doc['nlu_note']})")
    else:
        print(f"NLU time per input: {nlu * 1000:.0f} µs ({doc['nlu_note']})")
    print_memory(doc)
    for t in doc["targets"]:
        prof = t.get("profile")
        if prof and "summary" in prof:
            print(f"\nprofile of {t['target']} ({prof['file']}):")
            for line in prof["summary"]["text"]:
                print("  " + line)
        perf = t.get("perf")
        if perf and "summary" in perf:
            print(f"\nperf samples of {t['target']} ({perf['file']}):")
            for line in perf["summary"]["text"]:
                print("  " + line)
        elif perf:
            print(f"\nperf samples of {t['target']}: skipped, {perf['skipped']}")


def print_database(doc: dict[str, Any]) -> None:
    """PostgreSQL's work per delivered output, saturation phases (``bench.pgstats``)."""
    for t in doc["targets"]:
        for p in t["phases"]:
            db = p.get("database")
            if db is None or p["phase"] != "saturation":
                continue
            d = db["per_delivery"]
            print(
                f"database, {t['target']} {p['phase']}, per output: "
                f"{db['cpu_ms_per_delivery']:.3f} ms CPU (+{db['shared_cpu_ms_per_delivery']:.3f}"
                f" WAL writer etc.), {d.get('xact_commit', 0):.2f} commits, "
                f"{d.get('tup_inserted', 0):.2f} rows in, {d.get('tup_updated', 0):.2f} up, "
                f"{d.get('tup_fetched', 0):.2f} fetched, {d.get('tup_returned', 0):.2f} returned"
            )
            for name, c in sorted(db["tables_per_delivery"].items()):
                print(f"    {name}: " + ", ".join(f"{k} {v:g}" for k, v in c.items()))


def print_ratios(ratios: dict[str, Any]) -> None:
    """Ratios within this run: the only comparisons to trust on a shared machine."""
    if not ratios or not all(isinstance(r, dict) for r in ratios.values()):
        return  # result files written before ratios were per target
    print("\nratios within this run (saturation, one user per session unless said):")
    for name, r in ratios.items():
        parts = [
            f"{r['delivered_per_s']:,.0f} delivered/s",
            f"server CPU {r['server_ms_per_output']:.3f} ms/output",
            f"{r['outputs_per_server_cpu_s']:,.0f} outputs per server CPU s",
        ]
        if "database_ms_per_output" in r:
            parts.append(
                f"database CPU {r['database_ms_per_output']:.3f} ms/output, "
                f"{r['outputs_per_server_and_database_cpu_s']:,.0f} outputs per server and "
                "database CPU s"
            )
        if "throughput_over_baseline" in r:
            parts.append(f"throughput / baseline {r['throughput_over_baseline']:.2f}")
        if "cpu_per_output_over_baseline" in r:
            parts.append(f"CPU per output / baseline {r['cpu_per_output_over_baseline']:.2f}")
        if "one_user_over_many" in r:
            parts.append(
                f"one user {r['one_user_delivered_per_s']:,.0f}/s = "
                f"{r['one_user_over_many']:.2f} x one user per session"
            )
        if "throughput_over_one_process" in r:
            parts.append(f"throughput / one process {r['throughput_over_one_process']:.2f}")
        if "per_cpu_s_over_one_process" in r:
            parts.append(f"outputs per CPU s / one process {r['per_cpu_s_over_one_process']:.2f}")
        if "per_total_cpu_s_over_one_process" in r:
            parts.append(
                "outputs per server and database CPU s / one process "
                f"{r['per_total_cpu_s_over_one_process']:.2f}"
            )
        print(f"  {name}: " + "; ".join(parts))


def _mib(mem: dict[str, int]) -> str:
    return f"{mem['rss_kib'] / 1024:.1f}"


def _header(doc: dict[str, Any]) -> None:
    m = doc["machine"]
    print(
        f"\nflowhook bench {doc['timestamp']}  git {doc['git']}  "
        f"backend {doc['options']['backend']}  {m['nproc']} x {m['cpu_model']}  "
        f"Python {m['python']}  loadavg at start {' '.join(doc['loadavg_at_start'])}"
    )


def print_memory(doc: dict[str, Any]) -> None:
    """The memory measurements of ``python -m bench memory`` (or ``run --memory``)."""
    mem = doc.get("memory")
    if not mem:
        return
    if "targets" not in doc:
        _header(doc)
    flow = mem["options"]["flow"]
    print(f"\nmemory, flowhook/{flow} (RSS of the server process; MiB unless said)")
    header = (
        "measurement",
        "sessions",
        "state cache",
        "RSS before",
        "RSS after",
        "KiB/session",
        "anon KiB/session",
        "msgs/s",
        "lost",
        "other CPU",
    )
    rows: list[tuple[str, ...]] = []
    for r in mem["idle"]:
        d = r["drive"]
        rows.append(
            (
                "idle sessions (1 msg each)",
                str(r["sessions"]),
                f"{r['state_cache_capacity']:,}",
                _mib(r["rss_before"]),
                _mib(r["rss_after"]),
                _fmt(r["per_session"]["rss_kib"]),
                _fmt(r["per_session"]["anon_kib"]),
                _fmt(d["accepted_per_s"]),
                str(d["rejected"] + d["errors"] + d["accepted"] - d["delivered"]),
                _fmt(d["other_cpu_cores"]),
            )
        )
    st = mem.get("stored")
    if st:
        for label, before, after, per, d in (
            (
                "stored: populate via ingress",
                st["rss_before_populate"],
                st["rss_after_populate"],
                st["per_session_populated"],
                st["populate"],
            ),
            (
                "stored: restart, touch all",
                st["rss_after_restart_warm"],
                st["rss_after_touch"],
                st["per_session_touched"],
                st["touch"],
            ),
        ):
            rows.append(
                (
                    label,
                    str(st["sessions"]),
                    "100,000",
                    _mib(before),
                    _mib(after),
                    _fmt(per["rss_kib"]),
                    _fmt(per["anon_kib"]),
                    _fmt(d["accepted_per_s"]),
                    str(d["rejected"] + d["errors"] + d["accepted"] - d["delivered"]),
                    _fmt(d["other_cpu_cores"]),
                )
            )
    _print_rows(header, rows)
    if st:
        db = sum(st["data_files_bytes"].values()) / 2**20
        print(
            f"{st['sessions']:,} stored sessions: RSS {_mib(st['rss_after_restart'])} MiB right "
            f"after restart, {_mib(st['rss_after_restart_warm'])} MiB after a warm-up on "
            f"200 other sessions, {_mib(st['rss_after_touch'])} MiB after touching all "
            f"(peak {st['rss_after_touch']['peak_rss_kib'] / 1024:.1f}); data files "
            f"{db:.0f} MiB; populated through the ingress in {st['populate']['send_s']:.0f} s"
        )
    print(
        "(before = after a warm-up, server idle; after = every output delivered, server idle;\n"
        " KiB/session = (after - before) / sessions; anon = RssAnon, the heap; state cache =\n"
        " capacity of the runner's LRU of session states and of user profiles)"
    )


def print_soak(doc: dict[str, Any]) -> None:
    """The soak of ``python -m bench soak``."""
    s = doc["soak"]
    _header(doc)
    o = s["options"]
    sat, p = s["saturation"], s["soak"]
    print(
        f"\nsoak, {s['target']}: {o['minutes']:g} min open loop at {s['rate']}/s "
        f"= {o['fraction']:g} x saturation ({sat['accepted_per_s']} accepted/s, "
        f"{sat['delivered_per_s']} delivered/s), {o['sessions']} sessions"
    )
    print(
        f"whole soak: accepted {p['accepted_per_s']}/s, delivered {p['delivered_per_s']}/s, "
        f"ingress p50/p99 {_fmt(p['ingress_ms']['p50'])}/{_fmt(p['ingress_ms']['p99'])} ms, "
        f"e2e p50/p99 {_fmt(p['e2e_ms']['p50'])}/{_fmt(p['e2e_ms']['p99'])} ms, lost "
        f"{p['undelivered_after_drain'] + p['errors'] + p['rejected']}, srv "
        f"{_fmt(p['cpu_ms_per_delivery']['server'])} ms/out, other CPU "
        f"{p['cpu_s']['other_processes'] / p['cpu_s']['wall_s']:.2f} cores"
    )
    by_minute = {m["minute"]: m for m in s["per_minute"]}
    samples_by_minute: dict[int, list[dict[str, Any]]] = {}
    for smp in s["samples"]:
        samples_by_minute.setdefault(int(smp["t_s"] // 60), []).append(smp)
    header = (
        "minute",
        "sent",
        "ingress p99",
        "e2e p99",
        "e2e max",
        "lost",
        "RSS MiB (10 s samples)",
        "max behind",
        "other CPU",
    )
    rows: list[tuple[str, ...]] = []
    for minute in sorted(by_minute):
        m = by_minute[minute]
        smp = samples_by_minute.get(minute, [])
        other = max((x["other_cores"] or 0.0 for x in smp), default=0.0)
        rows.append(
            (
                str(minute),
                str(m["sent"]),
                _fmt(m["ingress_ms"]["p99"]),
                _fmt(m["e2e_ms"]["p99"]),
                _fmt(m["e2e_ms"]["max"]),
                str(m["lost"]),
                " ".join(f"{x['rss_kib'] / 1024:.1f}" for x in smp),
                str(max((x.get("behind", 0) for x in smp), default=0)),
                f"{other:.2f}",
            )
        )
    _print_rows(header, rows)
    v = s["rss"]
    if v.get("flat") is None:
        print(f"RSS: {v.get('note')}")
        return
    print(
        f"RSS {v['rss_first_mib']} -> {v['rss_last_mib']} MiB (max {v['rss_max_mib']}); "
        f"slope {v['slope_mib_per_min']} MiB/min overall, "
        f"{v['slope_last_two_thirds_mib_per_min']} MiB/min over the last 2/3 "
        f"(anon {v['anon_slope_last_two_thirds_mib_per_min']}); fitted growth over the last "
        f"2/3: {v['growth_last_two_thirds_pct']} % -> "
        f"{'FLAT' if v['flat'] else 'NOT FLAT'} (threshold {v['flat_threshold_pct']:g} %)"
    )
    print(
        f"RSS after the drain: {s['rss_after_drain']['rss_kib'] / 1024:.1f} MiB; data files "
        f"{sum(s['data_files_bytes'].values()) / 2**20:.0f} MiB"
    )
    print(
        "(other CPU = the highest of the minute's 10 s samples, cores; max behind = the\n"
        " highest (offered so far - delivered so far) of the minute's samples: backlog)"
    )


def _print_rows(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for r in rows:
        print(
            "  ".join(
                (c.ljust(w) if i == 0 else c.rjust(w))
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
