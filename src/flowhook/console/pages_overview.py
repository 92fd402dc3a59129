"""Flows (graphs and validation problems), analytics charts and the cluster status."""

from __future__ import annotations

import asyncio
import time

from starlette.responses import Response

from flowhook.cluster.status import cluster_view
from flowhook.console import charts
from flowhook.console.graph import flow_svg
from flowhook.console.queries import DAY, ConsoleQueries
from flowhook.console.web import ROUTES, Page, page
from flowhook.errors import NotFound
from flowhook.flows.loader import validate_path

PERIODS = {"1": 1, "7": 7, "30": 30, "90": 90}


@page("/console/flows")
async def flows(pg: Page) -> Response:
    services = pg.services
    registry = services.engine.registry
    loaded = [registry[name] for name in registry.names()]
    flows_dir = services.settings.flows_dir
    # What the files on disk say now (they may have changed since the server started).
    problems = await asyncio.to_thread(validate_path, flows_dir) if flows_dir.exists() else []
    return pg.render(
        "flows.html", flows=loaded, problems=problems, flows_dir=flows_dir, title="Flows"
    )


@page("/console/flows/{name}")
async def flow(pg: Page) -> Response:
    registry = pg.services.engine.registry
    loaded = registry.get(pg.param("name"))
    if loaded is None:
        raise NotFound(f"no flow named {pg.param('name')!r}", field="name")
    nodes = sorted(loaded.nodes.values(), key=lambda n: n.line)
    return pg.render(
        "flow.html", flow=loaded, graph=flow_svg(loaded), nodes=nodes, title=loaded.name
    )


@page("/console/endpoints/{endpoint_id}/analytics")
async def analytics(pg: Page) -> Response:
    services = pg.services
    view = await services.endpoints.get(pg.param("endpoint_id"))
    period = pg.query("days", "7")
    days = PERIODS.get(period, 7)
    until = time.time()
    since = until - days * DAY
    numbers = await services.insights.analytics(view.id, since, until)
    daily = await ConsoleQueries(services.store).per_day(view.id, since, until)
    turns = numbers["turns"]
    latency = numbers["turnLatencyMs"]
    figures = {
        "per_day": charts.daily_bars(
            "Messages handled and outputs per day",
            [d["day"] for d in daily],
            [
                ("messages handled", [d["in"] for d in daily]),
                ("outputs", [d["out"] for d in daily]),
            ],
        ),
        "intents": charts.horizontal_bars(
            "Top intents",
            [(i["intent"], i["count"]) for i in numbers["intents"][:10]],
            empty="No intent matched in this period",
        ),
        "handover": charts.meter(
            "Handover rate", None if not turns else numbers["handovers"] / turns, False
        ),
        "delivery": charts.meter("Delivery success", numbers["deliveries"]["successRate"]),
        "latency": charts.horizontal_bars(
            "Turn latency",
            [
                (name, latency[key])
                for name, key in (("p50", "p50"), ("p95", "p95"))
                if latency[key] is not None
            ],
            unit=" ms",
            empty="No turns in this period",
        ),
    }
    return pg.render(
        "analytics.html",
        endpoint=view,
        numbers=numbers,
        figures=figures,
        days=days,
        periods=PERIODS,
        tab="analytics",
        title=f"{view.name} · analytics",
    )


@page("/console/cluster")
async def cluster(pg: Page) -> Response:
    services = pg.services
    view = await cluster_view(services.store, services.settings.lease_seconds)
    return pg.render(
        "cluster.html",
        cluster=view,
        now=time.time(),
        role=services.settings.role,
        lease_seconds=services.settings.lease_seconds,
        title="Cluster",
    )


@page("/console/{rest:path}")
async def not_found(pg: Page) -> Response:
    raise NotFound(f"the console has no page {pg.request.url.path!r}")


# Registered last by flowhook.console.install, so it only answers what nothing else does.
NOT_FOUND = ROUTES.pop()
