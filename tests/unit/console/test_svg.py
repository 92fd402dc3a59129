"""The server-drawn SVG: a flow graph with every node and transition, charts whose text
is escaped and described for screen readers."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

from flowhook.console import charts
from flowhook.console.graph import flow_svg, layout
from flowhook.flows.registry import FlowRegistry

REPO = Path(__file__).resolve().parents[3]


def test_every_node_and_transition_of_a_flow_is_drawn() -> None:
    """order-help: one box per node, one arrow per transition, the start node on top,
    switch cases labelled by their value; the SVG is well-formed XML."""
    flow = FlowRegistry.load(REPO / "flows")["order-help"]
    boxes, edges, _, _ = layout(flow)
    assert {b.key for b in boxes} == set(flow.nodes)
    expected = {(n.node_id, t.node_id) for n in flow.nodes.values() for t in n.targets()}
    assert {(e.source, e.target) for e in edges} == expected
    start = next(b for b in boxes if b.key == flow.start)
    assert start.y == min(b.y for b in boxes)
    svg = str(flow_svg(flow))
    root = ElementTree.fromstring(svg)  # noqa: S314 - our own output
    ns = "{http://www.w3.org/2000/svg}"
    assert len(root.findall(f"{ns}g")) == len(flow.nodes)
    assert len(root.findall(f"{ns}path")) == len(edges)


def test_chart_text_is_escaped_and_described() -> None:
    """An intent named like markup is text in the chart, and the description lists it."""
    hostile = "<script>alert(1)</script>&"
    svg = str(charts.horizontal_bars("Top intents", [(hostile, 3), ("greet", 1)]))
    assert "<script>" not in svg
    root = ElementTree.fromstring(svg)  # noqa: S314 - our own output
    desc = root.find("{http://www.w3.org/2000/svg}desc")
    assert desc is not None
    assert hostile in (desc.text or "")
    bars = str(charts.daily_bars("Per day", [0.0, 86400.0], [("in", [0, 5]), ("out", [1, 2])]))
    ElementTree.fromstring(bars)  # noqa: S314 - our own output
    assert "1970-01-02 5" in bars
    assert "No data yet" in str(charts.meter("Rate", None))
