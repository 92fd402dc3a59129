"""Creating SQLAlchemy engines for the two supported backends."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from flowhook.errors import StorageError


def normalise_url(url: str) -> str:
    """Accept the URLs users write (postgresql://, postgres://) and pick our drivers."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def backend_name(url: str) -> str:
    name = make_url(normalise_url(url)).get_backend_name()
    if name not in ("sqlite", "postgresql"):
        raise StorageError(f"unsupported database {name!r}: use sqlite:/// or postgresql://")
    return name


def create_db_engine(
    url: str,
    *,
    pool_size: int = 5,
    max_overflow: int | None = None,
    sqlite_synchronous: str = "FULL",
    prepare: bool = True,
    application_name: str | None = None,
) -> Engine:
    """``application_name`` (PostgreSQL) tags every connection, so the connections of a
    process can be found in ``pg_stat_activity`` (and ended, see flowhook.cluster)."""
    url = normalise_url(url)
    backend = backend_name(url)
    overflow = pool_size if max_overflow is None else max_overflow
    if backend == "sqlite":
        engine = create_engine(url, pool_size=pool_size, max_overflow=overflow)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            # WAL: readers never block the writer. FULL: a committed write survives
            # even an OS crash, and group commit keeps the fsync cost per message low.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={sqlite_synchronous}")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.execute("PRAGMA foreign_keys=ON")
            # FAST: deleted content is zeroed where that costs no extra write, not in
            # whole freed pages. Builds that default to ON wrote every page a large row
            # freed to the log once more, zeros, on each delete and each update that moved
            # the row (docs/performance.md, "Where a healthy output waits").
            cur.execute("PRAGMA secure_delete=FAST")
            cur.close()

        return engine
    # prepare=False: no server-side prepared statements, for pgbouncer in transaction mode
    # before 1.21 (a prepared statement lives on one server connection).
    connect_args: dict[str, Any] = {} if prepare else {"prepare_threshold": None}
    if application_name is not None:
        connect_args["application_name"] = application_name[:63]
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=overflow,
        pool_pre_ping=True,
        connect_args=connect_args,
    )
