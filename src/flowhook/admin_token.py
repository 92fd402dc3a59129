"""The admin API's bearer token: from the environment, or generated once and kept private."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

TOKEN_FILE = "admin-token"  # noqa: S105 - a file name, not a secret


def resolve_admin_token(configured: str | None, data_dir: Path) -> tuple[str, bool]:
    """Returns (token, generated_now). A generated token is stored with mode 0600."""
    if configured:
        return configured, False
    path = data_dir / TOKEN_FILE
    if path.exists():
        return path.read_text().strip(), False
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    token = "fha_" + secrets.token_urlsafe(32)
    # Create with 0600 from the start: never a moment where others could read it.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    return token, True
