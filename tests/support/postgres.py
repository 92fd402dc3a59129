"""A real PostgreSQL database for tests: one scratch database per test run.

Under CI=true an unreachable server is a failure, never a skip: the PostgreSQL
suite must really run there.
"""

from __future__ import annotations

import os
import uuid

import psycopg
import pytest

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


def admin_url() -> str:
    return os.environ.get("FLOWHOOK_TEST_POSTGRES_URL", DEFAULT_ADMIN_URL)


def unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"PostgreSQL is required under CI=true but unavailable: {reason}")
    pytest.skip(f"PostgreSQL unavailable: {reason}")


def create_scratch_database() -> tuple[str, str]:
    """Create a fresh database; returns (its URL, its name)."""
    name = f"flowhook_test_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(admin_url(), autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        unavailable(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc))
    base = admin_url().rsplit("/", 1)[0]
    return f"{base}/{name}", name


def drop_database(name: str) -> None:
    with psycopg.connect(admin_url(), autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def reset_schema(url: str) -> None:
    """Empty the scratch database so each test starts from a fresh, unmigrated schema."""
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
