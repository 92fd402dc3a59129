"""The data dir is 0700 and the database, its -wal/-shm, key and token files 0600,
whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowhook.admin_token import resolve_admin_token
from tests.support.receiver import Receiver
from tests.support.server import running_server


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The loosest umask: anything created is world-readable unless asked otherwise."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("open_umask")
async def test_server_files_are_private(tmp_path: Path, receiver: Receiver) -> None:
    """With umask 000, a server on SQLite leaves a 0700 data dir and 0600 database,
    -wal, -shm and key files once it has written (a message accepted and delivered)."""
    data = tmp_path / "data"
    url = f"sqlite:///{data / 'flowhook.db'}"
    async with running_server(tmp_path, url) as srv:
        ep = await srv.create_endpoint(name="p", flow="echo", webhookUrl=receiver.url)
        await srv.post_message(ep, {"userId": "u", "sessionId": "s", "text": "hi"})
        await receiver.wait_for(1)
        assert mode(data) == 0o700
        files = ["flowhook.db", "flowhook.db-wal", "flowhook.db-shm", "secret-key"]
        assert {name: oct(mode(data / name)) for name in files} == {
            name: oct(0o600) for name in files
        }


@pytest.mark.usefixtures("open_umask")
def test_admin_token_file_and_existing_files_are_tightened(tmp_path: Path) -> None:
    """A generated admin token is stored 0600; files an older version left readable
    (and the data dir) are tightened on the next start."""
    from flowhook.private_files import prepare_data_dir

    data = tmp_path / "data"
    _token, generated = resolve_admin_token(None, data)
    assert generated
    assert mode(data / "admin-token") == 0o600
    os.chmod(data, 0o755)  # noqa: S103 - what an older version left
    for name in ("admin-token", "flowhook.db", "flowhook.db-wal"):
        (data / name).touch()
        os.chmod(data / name, 0o644)
    prepare_data_dir(data, f"sqlite:///{data / 'flowhook.db'}")
    assert mode(data) == 0o700
    for name in ("admin-token", "flowhook.db", "flowhook.db-wal"):
        assert mode(data / name) == 0o600
