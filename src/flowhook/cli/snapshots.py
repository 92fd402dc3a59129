"""``flowhook export`` and ``flowhook import``: move flows and endpoint settings between
installations as one snapshot file (the same service as the admin API's /snapshot)."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast

import typer

from flowhook.cli.context import make_settings, opened_store, run_with
from flowhook.cli.output import print_json

if TYPE_CHECKING:
    from flowhook.config import Settings
    from flowhook.flows.registry import FlowRegistry
    from flowhook.snapshots import ImportResult, SnapshotService

T = TypeVar("T")
CONFLICT_CHOICES = ("fail", "skip", "replace")


@asynccontextmanager
async def snapshot_service(settings: Settings) -> AsyncIterator[SnapshotService]:
    from flowhook.endpoints.key_check import verify_master_key
    from flowhook.endpoints.security import EndpointSecurity
    from flowhook.endpoints.service import EndpointService
    from flowhook.flows.errors import FlowValidationError
    from flowhook.flows.registry import FlowRegistry
    from flowhook.snapshots import SnapshotService

    async with opened_store(settings) as store:
        try:
            names = set(FlowRegistry.load(settings.flows_dir).names())
        except FlowValidationError:
            names = set()  # the import lists the flows dir's problems itself

        def flows_changed(registry: FlowRegistry) -> None:
            names.clear()
            names.update(registry.names())

        security = EndpointSecurity.from_settings(settings)
        verify_master_key(store.engine, security.box)
        endpoints = EndpointService(
            store,
            flow_exists=lambda name: name in names,
            flow_names=lambda: names,
            base_url=settings.base_url,
            security=security,
        )
        yield SnapshotService(
            endpoints,
            store,
            security,
            settings.flows_dir,
            on_flows_changed=flows_changed,
            allow_code_modules=settings.code_allow_modules,
        )


def _run(settings: Settings, action: Callable[[SnapshotService], Awaitable[T]]) -> T:
    return run_with(settings, snapshot_service, action)


def _passphrase(var: str | None) -> str | None:
    if var is None:
        return None
    value = os.environ.get(var)
    if not value:
        typer.echo(f"error: --passphrase-env: the environment variable {var} is not set", err=True)
        raise typer.Exit(2)
    return value


def export_(
    ctx: typer.Context,
    out: Path | None = typer.Option(
        None, "--out", help="Write the snapshot to this file (mode 0600); default: stdout."
    ),
    include_secrets: bool = typer.Option(
        False,
        "--include-secrets",
        help="Also export webhook passwords and signing secrets, encrypted with a passphrase.",
    ),
    passphrase_env: str | None = typer.Option(
        None,
        "--passphrase-env",
        metavar="VAR",
        help="Environment variable holding the passphrase (with --include-secrets).",
    ),
) -> None:
    """Export the flow files and every endpoint's settings as one JSON snapshot.

    API keys are never exported: generate new ones on the target.
    """
    if passphrase_env is not None and not include_secrets:
        typer.echo("error: --passphrase-env is only used with --include-secrets", err=True)
        raise typer.Exit(2)
    if include_secrets and passphrase_env is None:
        typer.echo("error: --include-secrets needs --passphrase-env VAR", err=True)
        raise typer.Exit(2)
    passphrase = _passphrase(passphrase_env)
    snapshot = _run(
        make_settings(ctx),
        lambda s: s.export(include_secrets=include_secrets, passphrase=passphrase),
    )
    data = snapshot.to_json_bytes() + b"\n"
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(out, 0o600)
    where = "stdout" if out is None else str(out)
    secrets = (
        "secrets encrypted with the passphrase"
        if include_secrets
        else "no passwords or signing secrets (--include-secrets to add them)"
    )
    typer.echo(
        f"exported {len(snapshot.flows)} flow file(s) and {len(snapshot.endpoints)} "
        f"endpoint(s) to {where}; {secrets}; API keys are never exported",
        err=True,
    )


def import_(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="A snapshot file made by `flowhook export`."),
    passphrase_env: str | None = typer.Option(
        None,
        "--passphrase-env",
        metavar="VAR",
        help="Environment variable holding the passphrase of the snapshot's secrets.",
    ),
    on_conflict: str = typer.Option(
        "fail",
        "--on-conflict",
        help="An endpoint (same name) or flow file that already exists: fail (import "
        "nothing), skip it, or replace it.",
    ),
) -> None:
    """Import a snapshot: flow files into the flows dir, endpoints (each with a new URL).

    Everything is checked first; any problem imports nothing and lists every problem.
    """
    if on_conflict not in CONFLICT_CHOICES:
        raise typer.BadParameter("expected fail, skip or replace", param_hint="--on-conflict")
    passphrase = _passphrase(passphrase_env)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        typer.echo(f"error: cannot read {file}: {exc.strerror}", err=True)
        raise typer.Exit(1) from None
    from flowhook.snapshots import OnConflict, parse_snapshot

    settings = make_settings(ctx)

    async def action(service: SnapshotService) -> ImportResult:
        return await service.import_(
            parse_snapshot(raw),
            passphrase=passphrase,
            on_conflict=cast(OnConflict, on_conflict),
        )

    result = _run(settings, action)
    print_json(result)
    _tell(result)


def _tell(result: ImportResult) -> None:
    """What the operator has to do now, in words, on stderr."""
    for ep in result.endpoints:
        typer.echo(f"endpoint {ep.name!r} {ep.action}: {ep.endpoint_url}", err=True)
        if ep.needs_api_key:
            typer.echo(
                f"  needs a new API key (API keys are never exported): "
                f"flowhook keys create {ep.id}",
                err=True,
            )
        if ep.lost_secrets:
            typer.echo(
                f"  lost its {', '.join(ep.lost_secrets)} (exported without "
                f"--include-secrets): set again with flowhook endpoints update {ep.id} "
                "--password ... / flowhook endpoints rotate-secret",
                err=True,
            )
        if ep.ignored_settings:
            typer.echo(
                f"  settings this installation does not know, not applied: "
                f"{', '.join(ep.ignored_settings)}",
                err=True,
            )
    if result.flows_changed:
        typer.echo(
            "flow files were written: restart running servers (flowhook serve) to load them",
            err=True,
        )
