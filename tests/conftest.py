"""Fixtures shared by all suites: storage backends (SQLite and real PostgreSQL)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from flowhook.logs import configure_logging
from flowhook.storage import migrate
from flowhook.storage.store import SqlStore
from tests.support import postgres
from tests.support.transports import TRANSPORTS, MakeTransport

configure_logging("warning")
# The checkout's flowhook.toml is for people running it; tests say what they need.
os.environ["FLOWHOOK_CONFIG"] = ""


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    url, name = postgres.create_scratch_database()
    yield url
    postgres.drop_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database URL of each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'flowhook.db'}"
    url: str = request.getfixturevalue("postgres_database")
    postgres.reset_schema(url)
    return url


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[SqlStore]:
    """A migrated, started Store on each backend."""
    migrate.upgrade(db_url)
    s = SqlStore(db_url)
    s.start()
    yield s
    s.close()


@pytest.fixture(params=list(TRANSPORTS))
def make_transport(request: pytest.FixtureRequest) -> MakeTransport:
    """Each delivery transport in turn (tests of behaviour both must have)."""
    return TRANSPORTS[request.param]
