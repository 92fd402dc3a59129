"""A flow drawn as a graph: nodes in rows by distance from the start node, arrows for
transitions (labelled with the field that makes them), drawn on the server as SVG."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

from flowhook.flows.model import LoadedFlow

NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 190, 52, 36, 64, 24
COLORS = {
    "question": ("#eff6ff", "#2563eb"),
    "say": ("#ecfdf5", "#059669"),
    "if": ("#fffbeb", "#d97706"),
    "switch": ("#fffbeb", "#d97706"),
    "end": ("#f3f4f6", "#4b5563"),
    "handover": ("#fdf2f8", "#db2777"),
    "flow": ("#f5f3ff", "#7c3aed"),
}
DEFAULT_COLOR = ("#f8fafc", "#475569")


@dataclass(frozen=True, slots=True)
class Box:
    key: str
    label: str
    kind: str
    line: int | None
    x: float
    y: float


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str
    label: str


def layout(flow: LoadedFlow) -> tuple[list[Box], list[Edge], float, float]:
    edges: list[Edge] = []
    kinds: dict[str, tuple[str, str, int | None]] = {}
    for node_id, node in flow.nodes.items():
        kinds[node_id] = (node_id, node.type_name, node.line)
        for target in node.targets():
            edges.append(Edge(node_id, target.node_id, target.field))
        for ref in node.flow_refs():
            key = f"flow:{ref.flow}:{ref.node or ''}"
            label = f"{ref.flow}" + (f" · {ref.node}" if ref.node else "")
            kinds[key] = (label, "flow", None)
            edges.append(Edge(node_id, key, "flow"))
    depth = {flow.start: 0}
    queue = deque([flow.start])
    while queue:
        current = queue.popleft()
        for edge in edges:
            if edge.source == current and edge.target not in depth:
                depth[edge.target] = depth[current] + 1
                queue.append(edge.target)
    last = max(depth.values(), default=0)
    for key in kinds:  # unreachable nodes (a loaded flow has none) go below
        depth.setdefault(key, last + 1)
    rows: dict[int, list[str]] = {}
    for key in kinds:
        rows.setdefault(depth[key], []).append(key)
    _order_rows(rows, edges)
    widest = max((len(r) for r in rows.values()), default=1)
    width = PAD * 2 + widest * NODE_W + (widest - 1) * GAP_X + 60
    boxes = []
    for row, keys in sorted(rows.items()):
        row_w = len(keys) * NODE_W + (len(keys) - 1) * GAP_X
        x0 = (width - 60 - row_w) / 2
        for i, key in enumerate(keys):
            label, kind, line = kinds[key]
            boxes.append(
                Box(key, label, kind, line, x0 + i * (NODE_W + GAP_X), PAD + row * (NODE_H + GAP_Y))
            )
    height = PAD * 2 + (max(rows) + 1) * NODE_H + max(rows) * GAP_Y
    return boxes, [e for e in edges if e.target in kinds], width, height


def flow_svg(flow: LoadedFlow) -> Markup:
    boxes, edges, width, height = layout(flow)
    at = {b.key: b for b in boxes}
    parts = [
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#64748b"/></marker></defs>'
    ]
    for edge in edges:
        a, b = at[edge.source], at[edge.target]
        if b.y > a.y:  # downwards: bottom centre to top centre
            x1, y1, x2, y2 = a.x + NODE_W / 2, a.y + NODE_H, b.x + NODE_W / 2, b.y
            mid = (y1 + y2) / 2
            d = f"M{x1:.0f},{y1:.0f} C{x1:.0f},{mid:.0f} {x2:.0f},{mid:.0f} {x2:.0f},{y2:.0f}"
            # Labels sit near the arrow's end, where edges out of one node have spread.
            lx, ly = 0.12 * x1 + 0.88 * x2, y2 - 15
        elif b.y == a.y:  # the same row: side to side
            forward = b.x > a.x
            x1 = a.x + NODE_W if forward else a.x
            x2 = b.x if forward else b.x + NODE_W
            y1 = y2 = a.y + NODE_H / 2
            d = f"M{x1:.0f},{y1:.0f} L{x2:.0f},{y2:.0f}"
            lx, ly = (x1 + x2) / 2, y1 - 6
        else:  # back up (a loop): around the right-hand side
            x1, y1 = a.x + NODE_W, a.y + NODE_H / 2
            x2, y2 = b.x + NODE_W, b.y + NODE_H / 2
            bulge = max(x1, x2) + 40 + 8 * (abs(a.y - b.y) / (NODE_H + GAP_Y))
            d = f"M{x1:.0f},{y1:.0f} C{bulge:.0f},{y1:.0f} {bulge:.0f},{y2:.0f} {x2:.0f},{y2:.0f}"
            lx, ly = bulge - 6, (y1 + y2) / 2
        parts.append(
            f'<path d="{d}" fill="none" stroke="#94a3b8" stroke-width="1.5" '
            f'marker-end="url(#arrow)"/>'
        )
        if edge.label not in ("next", "flow"):
            parts.append(
                f'<text x="{lx:.0f}" y="{ly:.0f}" font-size="11" text-anchor="middle" '
                f'fill="#475569" stroke="#fbfcfd" stroke-width="4" paint-order="stroke" '
                f'class="edge-label">{escape(_short(edge.label))}</text>'
            )
    for box in boxes:
        fill, stroke = COLORS.get(box.kind, DEFAULT_COLOR)
        start = box.key == flow.start
        label = box.label if len(box.label) <= 24 else box.label[:23] + "…"
        sub = box.kind + ("" if box.line is None else f" · line {box.line}")
        dash = ' stroke-dasharray="5 3"' if box.kind == "flow" else ""
        parts.append(
            f'<g class="node"><title>{escape(box.label)} ({escape(sub)})</title>'
            f'<rect x="{box.x:.0f}" y="{box.y:.0f}" width="{NODE_W}" height="{NODE_H}" rx="8" '
            f'fill="{fill}" stroke="{stroke}" stroke-width="{3 if start else 1.5}"{dash}/>'
            f'<text x="{box.x + 12:.0f}" y="{box.y + 22:.0f}" font-size="13" font-weight="600" '
            f'fill="#0f172a">{escape(label)}</text>'
            f'<text x="{box.x + 12:.0f}" y="{box.y + 40:.0f}" font-size="11" '
            f'fill="{stroke}">{escape(sub)}{" · start" if start else ""}</text></g>'
        )
    desc = "; ".join(f"{e.source} to {e.target} ({e.label})" for e in edges)
    # Every value placed in the markup above is escaped.
    return Markup(  # noqa: S704
        f'<svg class="flow-graph" viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" '
        f'height="{height:.0f}" role="img" aria-label="Graph of flow {escape(flow.name)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>Flow {escape(flow.name)}</title>'
        f"<desc>{escape(desc)}</desc>{''.join(parts)}</svg>"
    )


def _order_rows(rows: dict[int, list[str]], edges: list[Edge]) -> None:
    """Order each row by where its nodes' parents stand in the row above (fewer crossings)."""
    for row in sorted(rows)[1:]:
        above = {key: i for i, key in enumerate(rows.get(row - 1, []))}

        def place(key: str, above: dict[str, int] = above) -> float:
            spots = [above[e.source] for e in edges if e.target == key and e.source in above]
            return sum(spots) / len(spots) if spots else float(len(above))

        rows[row].sort(key=place)


def _short(label: str) -> str:
    """``case 'shipped': node`` reads as ``'shipped'``; long labels are cut."""
    if label.startswith("case ") and label.endswith(": node"):
        label = label[len("case ") : -len(": node")]
    return label if len(label) <= 22 else label[:21] + "…"
