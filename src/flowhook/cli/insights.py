"""``flowhook transcript`` and ``flowhook analytics``: the admin API's insights on the
command line, read from the same database."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import typer

from flowhook.cli.context import make_settings, run_with
from flowhook.cli.output import print_json, print_list

if TYPE_CHECKING:
    from flowhook.config import Settings
    from flowhook.storage.insights import Insights


@asynccontextmanager
async def _insights(settings: Settings) -> AsyncIterator[Insights]:
    from flowhook.storage import migrate
    from flowhook.storage.insights import Insights
    from flowhook.storage.store import SqlStore

    url = settings.resolved_database_url
    migrate.upgrade(url)
    store = SqlStore(url)
    try:
        yield Insights(store)
    finally:
        store.close()


def _read(ctx: typer.Context, fn: Callable[[Insights], Awaitable[Any]]) -> Any:
    return run_with(make_settings(ctx), _insights, fn)


def transcript(
    ctx: typer.Context,
    endpoint_id: str = typer.Argument(..., help="Endpoint id."),
    session_id: str = typer.Argument(..., help="Session id."),
    table: bool | None = typer.Option(None, "--table/--json"),
) -> None:
    """A session's messages in and out, oldest first."""
    from flowhook.sessions.insight_views import transcript_entry

    rows = _read(ctx, lambda i: i.transcript(endpoint_id, session_id, limit=5000))
    entries = [transcript_entry(row) for row in rows]
    print_list(entries, ["at", "direction", "source", "text", "traceId"], table)


def analytics(
    ctx: typer.Context,
    endpoint_id: str = typer.Argument(..., help="Endpoint id."),
    since: datetime | None = typer.Option(None, "--since", help="Start (default: 24 h ago)."),
    until: datetime | None = typer.Option(None, "--until", help="End (default: now)."),
) -> None:
    """Messages, sessions, intents, handovers, delivery success and turn latency."""
    from flowhook.sessions.insight_views import analytics_view

    end = time.time() if until is None else until.timestamp()
    start = end - 86_400 if since is None else since.timestamp()
    print_json(analytics_view(_read(ctx, lambda i: i.analytics(endpoint_id, start, end))))
