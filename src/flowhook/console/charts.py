"""Charts as inline SVG, drawn on the server: no script, readable by screen readers
(each chart has a title and a description listing its numbers)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

from markupsafe import Markup

INK = "#1f2937"
MUTED = "#6b7280"
GRID = "#e5e7eb"
SERIES = ("#2563eb", "#059669", "#d97706", "#7c3aed")


def _svg(width: int, height: int, title: str, desc: str, body: str) -> Markup:
    # Every value placed in the markup above is escaped.
    return Markup(  # noqa: S704
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title><desc>{escape(desc)}</desc>{body}</svg>"
    )


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        if value <= step:
            return float(step)
    magnitude = 10 ** (len(str(int(value))) - 1)
    return float((int(value / magnitude) + 1) * magnitude)


def daily_bars(
    title: str, days: Sequence[float], series: Sequence[tuple[str, Sequence[int]]]
) -> Markup:
    """Grouped vertical bars, one group per UTC day."""
    width, height, left, bottom, top = 960, 280, 44, 40, 16
    plot_w, plot_h = width - left - 12, height - bottom - top
    top_value = _nice_max(max((v for _, vals in series for v in vals), default=0))
    parts = []
    for i in range(5):
        y = top + plot_h - plot_h * i / 4
        label = f"{top_value * i / 4:g}"
        parts.append(
            f'<line x1="{left}" x2="{width - 12}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="12" '
            f'fill="{MUTED}">{label}</text>'
        )
    groups = max(1, len(days))
    group_w = plot_w / groups
    bar_w = max(2.0, min(28.0, (group_w - 6) / max(1, len(series))))
    label_every = max(1, groups // 10)
    for g, day in enumerate(days):
        x0 = left + g * group_w + (group_w - bar_w * len(series)) / 2
        for s, (name, values) in enumerate(series):
            v = values[g] if g < len(values) else 0
            h = plot_h * v / top_value
            parts.append(
                f'<rect x="{x0 + s * bar_w:.1f}" y="{top + plot_h - h:.1f}" '
                f'width="{bar_w - 1:.1f}" height="{h:.1f}" fill="{SERIES[s % len(SERIES)]}">'
                f"<title>{escape(name)} {_day(day)}: {v}</title></rect>"
            )
        if g % label_every == 0:
            parts.append(
                f'<text x="{left + g * group_w + group_w / 2:.1f}" y="{height - bottom + 16}" '
                f'text-anchor="middle" font-size="12" fill="{MUTED}">{_day(day)[5:]}</text>'
            )
    for s, (name, _) in enumerate(series):
        x = left + s * 120
        parts.append(
            f'<rect x="{x}" y="{height - 14}" width="10" height="10" '
            f'fill="{SERIES[s % len(SERIES)]}"/>'
            f'<text x="{x + 14}" y="{height - 5}" font-size="12" fill="{INK}">{escape(name)}</text>'
        )
    desc = "; ".join(
        f"{name}: " + ", ".join(f"{_day(d)} {v}" for d, v in zip(days, values, strict=False))
        for name, values in series
    )
    return _svg(width, height, title, desc, "".join(parts))


def horizontal_bars(
    title: str, rows: Sequence[tuple[str, float]], unit: str = "", empty: str = "No data yet"
) -> Markup:
    """One labelled bar per row, largest first as given."""
    row_h, left, width = 30, 150, 460
    height = max(1, len(rows)) * row_h + 8
    if not rows:
        body = f'<text x="0" y="20" font-size="14" fill="{MUTED}">{escape(empty)}</text>'
        return _svg(width, 32, title, empty, body)
    top_value = max(v for _, v in rows) or 1
    parts = []
    for i, (label, value) in enumerate(rows):
        y = 4 + i * row_h
        w = (width - left - 70) * value / top_value
        shown = label if len(label) <= 24 else label[:23] + "…"
        parts.append(
            f'<text x="{left - 8}" y="{y + 17}" text-anchor="end" font-size="13" '
            f'fill="{INK}">{escape(shown)}</text>'
            f'<rect x="{left}" y="{y + 4}" width="{max(w, 1):.1f}" height="18" rx="3" '
            f'fill="{SERIES[0]}"/>'
            f'<text x="{left + max(w, 1) + 6:.1f}" y="{y + 17}" font-size="13" '
            f'fill="{INK}">{value:g}{escape(unit)}</text>'
        )
    desc = "; ".join(f"{label}: {value:g}{unit}" for label, value in rows)
    return _svg(width, height, title, desc, "".join(parts))


def meter(title: str, fraction: float | None, good_high: bool = True) -> Markup:
    """A 0-100 % meter; green when good, amber or red when not."""
    width, height = 460, 56
    if fraction is None:
        body = f'<text x="0" y="30" font-size="13" fill="{MUTED}">No data yet</text>'
        return _svg(width, height, title, "no data", body)
    f = min(1.0, max(0.0, fraction))
    goodness = f if good_high else 1 - f
    color = "#059669" if goodness >= 0.95 else "#d97706" if goodness >= 0.8 else "#dc2626"
    body = (
        f'<text x="0" y="22" font-size="22" font-weight="600" fill="{INK}">{100 * f:.1f} %</text>'
        f'<rect x="0" y="34" width="{width}" height="12" rx="6" fill="{GRID}"/>'
        f'<rect x="0" y="34" width="{width * f:.1f}" height="12" rx="6" fill="{color}"/>'
    )
    return _svg(width, height, title, f"{100 * f:.1f} percent", body)


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d")
