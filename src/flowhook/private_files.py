"""The data dir and its files are private to the server's user, whatever the umask.

The SQLite database holds URL tokens (the credentials of ``authMethod: none``
endpoints) and transcripts; the key and admin-token files are secrets. So the data
dir is made 0700 and the database, its ``-wal``/``-shm`` files and the key and token
files 0600, both when created (the database file is created 0600 *before* SQLite
opens it: SQLite gives its -wal and -shm files the database file's mode) and on every
start (tightening what an older version or a copied backup left readable).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from sqlalchemy.engine import make_url

DIR_MODE = 0o700
FILE_MODE = 0o600
SECRET_FILES = ("secret-key", "admin-token")


def sqlite_path(database_url: str) -> Path | None:
    """The database file of a SQLite URL; None for other databases and in-memory ones."""
    url = make_url(database_url)
    if not url.get_backend_name().startswith("sqlite"):
        return None
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def prepare_data_dir(data_dir: Path, database_url: str) -> None:
    """Create (or tighten) the data dir and the database file before anything opens it."""
    data_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    os.chmod(data_dir, DIR_MODE)  # mkdir's mode is filtered by the umask; chmod is not
    database = sqlite_path(database_url)
    if database is not None:
        database.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        os.close(os.open(database, os.O_CREAT | os.O_WRONLY, FILE_MODE))
        private(database, Path(f"{database}-wal"), Path(f"{database}-shm"))
    private(*(data_dir / name for name in SECRET_FILES))


def private(*paths: Path) -> None:
    """chmod 0600 each path that exists."""
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.chmod(path, FILE_MODE)
