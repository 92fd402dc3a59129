"""``flowhook messages ...``: where accepted messages stand, failed ones with the reason."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, TypeVar

import typer

from flowhook.cli.context import make_settings, opened_store, run_with
from flowhook.cli.output import print_json, print_table, to_jsonable, wants_table

if TYPE_CHECKING:
    from flowhook.config import Settings
    from flowhook.sessions.messages import MessageService

T = TypeVar("T")
STATUSES = ("pending", "done", "failed")

messages_app = typer.Typer(
    help="Accepted messages: pending, done, or failed with the reason.", no_args_is_help=True
)


@asynccontextmanager
async def message_service(settings: Settings) -> AsyncIterator[MessageService]:
    from flowhook.sessions.messages import MessageService

    async with opened_store(settings) as store:
        yield MessageService(store)


def run(settings: Settings, action: Callable[[MessageService], Awaitable[T]]) -> T:
    return run_with(settings, message_service, action)


@messages_app.command("list")
def list_(
    ctx: typer.Context,
    endpoint_id: str = typer.Argument(..., help="Endpoint id."),
    status: str | None = typer.Option(None, "--status", help="pending, done or failed."),
    session: str | None = typer.Option(None, "--session", help="Only this sessionId."),
    limit: int = typer.Option(50, "--limit", min=1, max=500),
    cursor: str | None = typer.Option(None, "--cursor", help="nextCursor of the last page."),
    table: bool | None = typer.Option(None, "--table/--json", help="Table or JSON."),
) -> None:
    """An endpoint's messages, newest first."""
    if status is not None and status not in STATUSES:
        raise typer.BadParameter(f"expected one of {', '.join(STATUSES)}", param_hint="--status")
    page = run(
        make_settings(ctx),
        lambda s: s.page(
            endpoint_id,
            status=status,  # type: ignore[arg-type]
            session_id=session,
            cursor=cursor,
            limit=limit,
        ),
    )
    if wants_table(table):
        print_table(
            [to_jsonable(m) for m in page.items],
            ["id", "sessionId", "status", "receivedAt", "attempts", "error"],
        )
    else:
        print_json(page)


@messages_app.command("show")
def show(ctx: typer.Context, message_id: int = typer.Argument(..., help="Message id.")) -> None:
    """One message: its status, attempts and, when failed, why."""
    print_json(run(make_settings(ctx), lambda s: s.get(message_id)))
