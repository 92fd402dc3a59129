"""``flowhook secret-key rotate``: re-encrypt every stored secret under a new master key.

Stop every server on the database first: a server still running with the old key could
no longer read the secrets (and one started with the old key afterwards refuses to
start). With the key in the data dir's key file, the new key replaces it: it is written
to ``secret-key.new`` before the database changes and renamed over ``secret-key`` after
the commit, so an interrupted rotation leaves the new key on disk next to the old one.
With ``FLOWHOOK_SECRET_KEY``, the new key is printed once: set it before restarting.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from flowhook.cli.context import make_settings, run_with_store
from flowhook.cli.output import print_json

if TYPE_CHECKING:
    from flowhook.config import Settings
    from flowhook.storage.store import SqlStore

secret_key_app = typer.Typer(
    help="The master key encrypting stored secrets (docs/security.md).", no_args_is_help=True
)


@secret_key_app.command("rotate")
def rotate(
    ctx: typer.Context,
    new_key: str | None = typer.Option(
        None,
        "--new-key",
        envvar="FLOWHOOK_NEW_SECRET_KEY",
        help="The new key (base64 of 32 bytes); default: a new random one.",
        show_envvar=True,
    ),
) -> None:
    """Re-encrypt every stored secret with a new master key (stop the servers first)."""
    from flowhook.endpoints.key_check import rotate_master_key
    from flowhook.endpoints.vault import (
        KEY_FILE,
        SecretBox,
        SecretKeyError,
        decode_key,
        load_or_create_key,
        new_key_text,
    )
    from flowhook.errors import ConfigError

    settings = make_settings(ctx)
    from_env = settings.secret_key is not None
    old_text = settings.secret_key.get_secret_value() if settings.secret_key else None
    try:
        old = SecretBox(load_or_create_key(old_text, settings.data_dir))
        text = new_key or new_key_text()
        new = SecretBox(decode_key(text))
    except SecretKeyError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    staged = None if from_env else _stage(settings, text)

    async def go(store: SqlStore) -> int:
        return rotate_master_key(store.engine, old, new)

    try:
        count = run_with_store(settings, go)
    except ConfigError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    except BaseException:
        if staged is not None:
            staged.unlink(missing_ok=True)
        raise
    out: dict[str, object] = {"reencrypted": count}
    if staged is not None:
        staged.replace(settings.data_dir / KEY_FILE)
        out["keyFile"] = str(settings.data_dir / KEY_FILE)
    else:
        # Shown this once: FLOWHOOK_SECRET_KEY must be set to it before servers restart.
        out["newKey"] = text
    print_json(out)


def _stage(settings: Settings, text: str) -> Path:
    from flowhook.endpoints.vault import KEY_FILE

    path = settings.data_dir / (KEY_FILE + ".new")
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return path
