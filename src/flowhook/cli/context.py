"""Settings for a CLI invocation, and opening the endpoint service without a server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import typer

# Only what a command needs is imported, when it runs: ``flowhook --help`` or
# ``flowhook send`` then start without loading the database layer, the flows or the
# server (each process would otherwise pay for all of them).
if TYPE_CHECKING:
    from flowhook.config import Settings
    from flowhook.endpoints.service import EndpointService
    from flowhook.storage.store import SqlStore

T = TypeVar("T")
S = TypeVar("S")


def make_settings(ctx: typer.Context, **overrides: Any) -> Settings:
    """Settings from the environment and the flags; an invalid value is named on stderr
    (setting, variable, what was expected) and the command exits 2."""
    from pydantic import ValidationError

    from flowhook.config import Settings
    from flowhook.errors import FlowhookError

    base: dict[str, Any] = dict(ctx.obj or {})
    base.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings(**base)
    except FlowhookError as exc:  # the config file cannot be read
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None
    except ValidationError as exc:
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"])
            variable = "FLOWHOOK_" + str(error["loc"][0]).upper() if error["loc"] else ""
            typer.echo(f"error: setting {name} ({variable}): {error['msg']}", err=True)
        raise typer.Exit(2) from None


@asynccontextmanager
async def opened_store(settings: Settings) -> AsyncIterator[SqlStore]:
    """The database, migrated and opened, for one CLI command."""
    from flowhook.private_files import prepare_data_dir
    from flowhook.storage import migrate
    from flowhook.storage.store import SqlStore

    url = settings.resolved_database_url
    prepare_data_dir(settings.data_dir, url)
    migrate.upgrade(url)
    store = SqlStore(url)
    store.start()
    try:
        yield store
    finally:
        store.close()


@asynccontextmanager
async def endpoint_service(settings: Settings) -> AsyncIterator[EndpointService]:
    from flowhook.endpoints.key_check import verify_master_key
    from flowhook.endpoints.security import EndpointSecurity
    from flowhook.endpoints.service import EndpointService
    from flowhook.flows.registry import FlowRegistry
    from flowhook.sessions.transformers import Transformers

    async with opened_store(settings) as store:
        registry = FlowRegistry.load(settings.flows_dir)
        # The same key and allowlist as the server: FLOWHOOK_SECRET_KEY or the data
        # dir's key file, and FLOWHOOK_WEBHOOK_ALLOW_CIDRS. A key that is not the
        # database's is refused before it could seal a secret nobody else can read.
        security = EndpointSecurity.from_settings(settings)
        verify_master_key(store.engine, security.box)
        yield EndpointService(
            store,
            flow_exists=lambda name: registry.get(name) is not None,
            flow_names=registry.names,
            base_url=settings.base_url,
            security=security,
            transformers=Transformers(
                settings.flows_dir, allow_modules=settings.code_allow_modules
            ),
        )


def configure_logging(level: str, log_format: str) -> None:
    """flowhook's logging set-up (stderr), imported when a command runs."""
    from flowhook.logs import configure_logging as configure

    configure(level, log_format)


def run_with(
    settings: Settings,
    opener: Callable[[Settings], AbstractAsyncContextManager[S]],
    action: Callable[[S], Awaitable[T]],
) -> T:
    """Open a service with ``opener``, run one call on it, close it. A FlowhookError
    becomes a clear message on stderr and exit code 1; logs go to stderr too, so
    stdout stays clean JSON."""
    from flowhook.errors import FlowhookError

    configure_logging(settings.log_level, settings.log_format)

    async def go() -> T:
        async with opener(settings) as service:
            return await action(service)

    try:
        return asyncio.run(go())
    except FlowhookError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None


def run_with_store(settings: Settings, action: Callable[[SqlStore], Awaitable[T]]) -> T:
    """Run one call on the database (see run_with)."""
    return run_with(settings, opened_store, action)


def run(settings: Settings, action: Callable[[EndpointService], Awaitable[T]]) -> T:
    """Run one endpoint-service call (see run_with)."""
    return run_with(settings, endpoint_service, action)
