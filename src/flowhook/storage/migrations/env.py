"""Alembic environment: runs migrations on the URL set by flowhook.storage.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text

from flowhook.storage.schema import metadata

config = context.config


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = create_engine(url)
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # Several processes may start at once: only one migrates at a time.
            connection.execute(text("SELECT pg_advisory_xact_lock(7213561)"))
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
        # The advisory lock above opened the transaction, so Alembic joined it
        # rather than owning it: commit here (this also releases the lock).
        connection.commit()
    engine.dispose()


run_migrations_online()
