"""Fixtures shared by the storage tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from flowhook.storage import migrate
from flowhook.storage.store import SqlStore


@pytest.fixture
async def owned_store(postgres_database: str) -> AsyncIterator[SqlStore]:
    """A store on a fresh PostgreSQL schema as worker "w1" of a cluster: its turn commits
    are fenced, and its accepts announce what they inserted."""
    from tests.support import postgres

    postgres.reset_schema(postgres_database)
    migrate.upgrade(postgres_database)
    s = SqlStore(postgres_database, owner="w1")
    s.start()
    yield s
    s.close()
