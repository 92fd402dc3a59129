"""``flowhook``: serve, manage endpoints and keys, listen for deliveries, send messages."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from flowhook import __version__
from flowhook.cli import flows as flows_cli
from flowhook.cli import insights as insights_cli
from flowhook.cli import snapshots as snapshots_cli
from flowhook.cli.context import make_settings
from flowhook.cli.deliveries import deliveries_app
from flowhook.cli.endpoints import endpoints_app, keys_app
from flowhook.cli.messages import messages_app
from flowhook.cli.secret_key import secret_key_app

# The command modules import what their commands use when they run (the server, the
# database, the flows), so that every command, and --help, starts quickly.

app = typer.Typer(
    help="flowhook: a self-hostable Webhook Endpoint for conversational AI agents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(endpoints_app, name="endpoints")
app.add_typer(keys_app, name="keys")
app.add_typer(deliveries_app, name="deliveries")
app.add_typer(messages_app, name="messages")
app.add_typer(secret_key_app, name="secret-key")
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
cluster_app = typer.Typer(help="Processes sharing a PostgreSQL database.", no_args_is_help=True)
app.add_typer(cluster_app, name="cluster")
flows_app = typer.Typer(help="Flows.", no_args_is_help=True)
app.add_typer(flows_app, name="flows")


flows_app.command("validate")(flows_cli.validate)
app.command("chat")(flows_cli.chat)
app.command("transcript")(insights_cli.transcript)
app.command("analytics")(insights_cli.analytics)
app.command("export")(snapshots_cli.export_)
app.command("import")(snapshots_cli.import_)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"flowhook {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print the version and exit.",
    ),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Data dir (default ./.flowhook)."
    ),
    flows_dir: Path | None = typer.Option(None, "--flows-dir", help="Flows dir (default ./flows)."),
    database_url: str | None = typer.Option(
        None, "--database-url", help="sqlite:///path or postgresql://... (default: SQLite)."
    ),
) -> None:
    overrides: dict[str, Any] = {
        "data_dir": data_dir,
        "flows_dir": flows_dir,
        "database_url": database_url,
    }
    ctx.obj = {k: v for k, v in overrides.items() if v is not None}


@app.command()
def serve(
    ctx: typer.Context,
    host: str | None = typer.Option(None, "--host", help="Address to bind (default 127.0.0.1)."),
    port: int | None = typer.Option(None, "--port", help="Port (default 8080)."),
    public_url: str | None = typer.Option(
        None, "--public-url", help="Base URL clients use, for endpointUrl."
    ),
    role: str | None = typer.Option(
        None,
        "--role",
        help="both (default), ingress (accept + admin API) or worker (turns + delivery); "
        "ingress and worker need PostgreSQL.",
    ),
) -> None:
    """Run the server: ingress, admin API, flow runner and delivery."""
    from flowhook.cli.serve import serve_forever

    serve_forever(make_settings(ctx, host=host, port=port, public_url=public_url, role=role))


@app.command()
def listen(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
    user: str | None = typer.Option(None, "--user", help="Require this Basic Auth user."),
    password: str | None = typer.Option(None, "--password", help="Require this password."),
    secret: str | None = typer.Option(
        None,
        "--secret",
        envvar="FLOWHOOK_LISTEN_SECRET",
        help="Verify signatures with this whsec_ secret (401 when invalid).",
    ),
) -> None:
    """A local webhook receiver that prints every delivery it gets."""
    from flowhook.delivery.signing import secret_key
    from flowhook.tools.listen import run_listener

    if (user is None) != (password is None):
        typer.echo("error: give both --user and --password, or neither", err=True)
        raise typer.Exit(2)
    if secret is not None:
        try:
            secret_key(secret)
        except ValueError as exc:
            typer.echo(f"error: --secret: {exc}", err=True)
            raise typer.Exit(2) from None
    run_listener(host, port, user, password, secret=secret)


@app.command()
def send(
    url: str = typer.Argument(..., help="The endpoint URL (endpointUrl)."),
    user_id: str = typer.Option(..., "--user-id"),
    session_id: str = typer.Option(..., "--session-id"),
    text: str | None = typer.Option(None, "--text"),
    data: str | None = typer.Option(None, "--data", help="A JSON object."),
    key: str | None = typer.Option(None, "--key", help="X-Webhook-Key, if the endpoint needs one."),
) -> None:
    """POST one message to an endpoint and print the answer."""
    from flowhook.cli.send import send_message

    status, body = send_message(url, user_id, session_id, text, data, key)
    sys.stdout.write(body + "\n")
    if not 200 <= status < 300:
        raise typer.Exit(1)


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Apply schema migrations up to the newest."""
    from flowhook.private_files import prepare_data_dir
    from flowhook.storage import migrate

    settings = make_settings(ctx)
    prepare_data_dir(settings.data_dir, settings.resolved_database_url)
    migrate.upgrade(settings.resolved_database_url)
    typer.echo(f"schema at {migrate.current(settings.resolved_database_url)}")


@cluster_app.command("status")
def cluster_status(ctx: typer.Context) -> None:
    """Print the live processes and the partitions each holds, as JSON."""
    from flowhook.cli.context import run_with_store
    from flowhook.cluster.status import cluster_view

    settings = make_settings(ctx)
    view = run_with_store(settings, lambda store: cluster_view(store, settings.lease_seconds))
    typer.echo(view.model_dump_json(by_alias=True, indent=2))


@flows_app.command("list")
def flows_list(
    ctx: typer.Context,
    table: bool | None = typer.Option(
        None, "--table/--json", help="Default: a table on a terminal, else JSON."
    ),
) -> None:
    """List the flows the server would load."""
    from flowhook.cli.output import print_list
    from flowhook.errors import FlowhookError
    from flowhook.flows.registry import FlowRegistry

    try:
        names = FlowRegistry.load(make_settings(ctx).flows_dir).names()
    except FlowhookError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    print_list(sorted(names), ["name"], table)


if __name__ == "__main__":  # pragma: no cover
    app()
