"""``flowhook deliveries ...``: the attempt log, dead letters and replay on the command line.

The commands work on the database directly, like the rest of the CLI. A running server
picks replayed deliveries (and an endpoint switched back on) up at its next outbox sweep
(``FLOWHOOK_DELIVERY_SWEEP_SECONDS``, default 2 s).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

import typer

from flowhook.cli.context import configure_logging, make_settings, opened_store, run_with
from flowhook.cli.context import run as run_endpoints
from flowhook.cli.output import print_json, print_table, to_jsonable, wants_table

if TYPE_CHECKING:
    from flowhook.config import Settings
    from flowhook.delivery.service import DeliveryService

T = TypeVar("T")

deliveries_app = typer.Typer(
    help="Deliveries of bot outputs: list, show attempts, replay dead letters.",
    no_args_is_help=True,
)

TABLE_OPT = typer.Option(
    None, "--table/--json", help="Table or JSON (default: table on a terminal)."
)
STATUSES = ("pending", "delivered", "failed")


@asynccontextmanager
async def delivery_service(settings: Settings) -> AsyncIterator[DeliveryService]:
    from flowhook.delivery.service import DeliveryService

    async with opened_store(settings) as store:
        yield DeliveryService(store)


def run(settings: Settings, action: Callable[[DeliveryService], Awaitable[T]]) -> T:
    return run_with(settings, delivery_service, action)


def _when(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            "expected an ISO 8601 time, e.g. 2026-11-23T10:00:00Z", param_hint=option
        ) from None


@deliveries_app.command("list")
def list_(
    ctx: typer.Context,
    endpoint_id: str = typer.Argument(..., help="Endpoint id."),
    status: str | None = typer.Option(None, "--status", help="pending, delivered or failed."),
    session: str | None = typer.Option(None, "--session", help="Only this sessionId."),
    since: str | None = typer.Option(None, "--since", help="Created at or after (ISO 8601)."),
    until: str | None = typer.Option(None, "--until", help="Created before (ISO 8601)."),
    limit: int = typer.Option(50, "--limit", min=1, max=500),
    cursor: str | None = typer.Option(None, "--cursor", help="nextCursor of a previous page."),
    table: bool | None = TABLE_OPT,
) -> None:
    """List an endpoint's deliveries, newest first."""
    if status is not None and status not in STATUSES:
        raise typer.BadParameter("expected pending, delivered or failed", param_hint="--status")
    start, end = _when(since, "--since"), _when(until, "--until")
    page = run(
        make_settings(ctx),
        lambda s: s.list(
            endpoint_id,
            session_id=session,
            status=status,  # type: ignore[arg-type]
            since=start,
            until=end,
            limit=limit,
            cursor=cursor,
        ),
    )
    if wants_table(table):
        print_table(
            to_jsonable(page.items),
            ["id", "sessionId", "status", "attemptCount", "lastStatusCode", "createdAt"],
        )
        if page.next_cursor:
            typer.echo(f"more: --cursor {page.next_cursor}")
    else:
        print_json(page)


@deliveries_app.command("show")
def show(ctx: typer.Context, delivery_id: str = typer.Argument(..., help="Delivery id.")) -> None:
    """Show one delivery: its payload and every attempt."""
    print_json(run(make_settings(ctx), lambda s: s.show(delivery_id)))


@deliveries_app.command("replay")
def replay(ctx: typer.Context, delivery_id: str = typer.Argument(..., help="Delivery id.")) -> None:
    """Send one delivery again (same webhook-id); switches the endpoint's delivery on."""
    print_json(run(make_settings(ctx), lambda s: s.replay(delivery_id)))


@deliveries_app.command("replay-failed")
def replay_failed(
    ctx: typer.Context,
    endpoint_id: str = typer.Argument(..., help="Endpoint id."),
    since: str | None = typer.Option(None, "--since", help="Created at or after (ISO 8601)."),
    until: str | None = typer.Option(None, "--until", help="Created before (ISO 8601)."),
) -> None:
    """Send again every failed delivery of an endpoint (optionally in a time range)."""
    start, end = _when(since, "--since"), _when(until, "--until")
    print_json(run(make_settings(ctx), lambda s: s.replay_failed(endpoint_id, start, end)))


@deliveries_app.command("enable")
def enable(ctx: typer.Context, endpoint_id: str = typer.Argument(..., help="Endpoint id.")) -> None:
    """Switch an endpoint's delivery back on (after a 410 Gone, or a pause)."""
    from flowhook.endpoints.models import EndpointUpdate

    req = EndpointUpdate(delivery_enabled=True)
    settings = make_settings(ctx)
    configure_logging(settings.log_level, settings.log_format)
    print_json(run_endpoints(settings, lambda s: s.update(endpoint_id, req)))


@deliveries_app.command("pause")
def pause(ctx: typer.Context, endpoint_id: str = typer.Argument(..., help="Endpoint id.")) -> None:
    """Stop delivering to an endpoint; its outputs are kept and sent after `enable`."""
    from flowhook.endpoints.models import EndpointUpdate

    req = EndpointUpdate(delivery_enabled=False)
    settings = make_settings(ctx)
    configure_logging(settings.log_level, settings.log_format)
    print_json(run_endpoints(settings, lambda s: s.update(endpoint_id, req)))
