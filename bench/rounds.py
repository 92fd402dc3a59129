"""``bench run --rounds N``: the targets' saturation phases taking turns, N times.

On these shared machines the speed drifts by tens of per cent within a minute, and a
plain run measures the baseline's phases first and flowhook's a minute later: a ratio
between them carries that drift. With rounds, every target stays up after its own
phases, and each round runs one saturation phase per target back to back (flowhook's
one-user phase right after its own), the order reversed every other round. Each ratio
is taken within one round; the report gives every round's and their median.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

BASELINE = "baseline"

# (target name, users) -> the phase's figures; users 0 = one user per session, 1 = one
Measure = Callable[[str, int], dict[str, Any]]


def run_rounds(
    names: Sequence[str], rounds: int, one_user: bool, measure: Measure
) -> dict[str, Any]:
    """Run ``rounds`` rounds over the targets ``names`` and return every round's ratios and
    their medians (``{"rounds": [...], "median": {...}}``)."""
    per_round: list[dict[str, dict[str, float]]] = []
    for number in range(rounds):
        order = list(names) if number % 2 == 0 else list(reversed(names))
        figures: dict[str, dict[str, float]] = {}
        for name in order:
            phase = measure(name, 0)
            figures[name] = {
                "delivered_per_s": phase["delivered_per_s"],
                "server_ms_per_output": phase["cpu_ms_per_delivery"]["server"],
            }
            if one_user and name != BASELINE:
                figures[name]["one_user_delivered_per_s"] = measure(name, 1)["delivered_per_s"]
        per_round.append(round_ratios(figures))
    return {"rounds": per_round, "median": medians(per_round)}


def round_ratios(figures: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """One round's figures per target, with its ratios to the baseline of the same round
    and its one-user throughput over its own."""
    base = figures.get(BASELINE)
    out: dict[str, dict[str, float]] = {}
    for name, fig in figures.items():
        row = dict(fig)
        if base is not None and name != BASELINE:
            if base["delivered_per_s"]:
                row["throughput_over_baseline"] = fig["delivered_per_s"] / base["delivered_per_s"]
            if base["server_ms_per_output"]:
                row["cpu_per_output_over_baseline"] = (
                    fig["server_ms_per_output"] / base["server_ms_per_output"]
                )
        if "one_user_delivered_per_s" in fig and fig["delivered_per_s"]:
            row["one_user_over_many"] = fig["one_user_delivered_per_s"] / fig["delivered_per_s"]
        out[name] = {key: round(value, 3) for key, value in row.items()}
    return out


def medians(per_round: Sequence[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Per target and figure, the median over the rounds that have it."""
    values: dict[str, dict[str, list[float]]] = {}
    for row in per_round:
        for name, fig in row.items():
            for key, value in fig.items():
                values.setdefault(name, {}).setdefault(key, []).append(value)
    return {
        name: {key: round(statistics.median(seen), 3) for key, seen in figures.items()}
        for name, figures in values.items()
    }


def print_rounds(result: dict[str, Any]) -> None:
    """The rounds' ratios, one line per round and target, then the medians."""
    print(f"\nrounds (saturation phases taking turns, {len(result['rounds'])} rounds):")
    for number, row in enumerate(result["rounds"], start=1):
        for name, fig in row.items():
            print(f"  round {number} {name}: {_describe(fig)}")
    for name, fig in result["median"].items():
        print(f"  median {name}: {_describe(fig)}")


def _describe(fig: dict[str, float]) -> str:
    parts = [
        f"{fig['delivered_per_s']:,.0f} delivered/s",
        f"server CPU {fig['server_ms_per_output']:.3f} ms/output",
    ]
    if "throughput_over_baseline" in fig:
        parts.append(f"throughput / baseline {fig['throughput_over_baseline']:.2f}")
    if "cpu_per_output_over_baseline" in fig:
        parts.append(f"CPU per output / baseline {fig['cpu_per_output_over_baseline']:.2f}")
    if "one_user_over_many" in fig:
        parts.append(f"one user / many {fig['one_user_over_many']:.2f}")
    return "; ".join(parts)
