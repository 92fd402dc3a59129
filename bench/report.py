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
    print(
        f"{o['duration_s']:g} s per phase after {o['warmup_s']:g} s warm-up, "
        f"{o['sessions']} sessions, closed loop {o['connections_closed_loop']} connections, "
        f"fixed load = {o['open_loop_fraction_of_saturation']:g} x saturation"
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
        " other CPU = cores used by processes outside the bench during the phase)"
    )
    for t in doc["targets"]:
        before, after = t["rss_before"], t["rss_after"]
        print(
            f"RSS {t['target']}: {before['rss_kib'] / 1024:.1f} MiB before, "
            f"{after['rss_kib'] / 1024:.1f} MiB after (peak {after['peak_rss_kib'] / 1024:.1f} MiB)"
        )
    for name, ratio in doc["ratios"].items():
        print(f"delivered throughput at saturation, {name} / baseline: {ratio:.2f}")
    nlu = doc.get("nlu_ms_per_input")
    if nlu is None:
        print(f"NLU time per input: n/a ({doc['nlu_note']})")
    else:
        print(f"NLU time per input: {nlu * 1000:.0f} µs ({doc['nlu_note']})")
    for t in doc["targets"]:
        prof = t.get("profile")
        if prof and "summary" in prof:
            print(f"\nprofile of {t['target']} ({prof['file']}):")
            for line in prof["summary"]["text"]:
                print("  " + line)
