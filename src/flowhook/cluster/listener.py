"""LISTEN on PostgreSQL: wake-ups from other processes, without polling.

One connection per process, outside the pool (it stays in LISTEN for good). After a
reconnect, notifications sent meanwhile are lost: ``on_connect`` runs each time the
channels are listened to again, so the caller can look at everything it owns.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping

import psycopg
import structlog
from psycopg import sql
from sqlalchemy.engine import make_url

from flowhook.storage.engine import normalise_url

log = structlog.get_logger(__name__)

RECONNECT_MAX_SECONDS = 10.0


def libpq_url(url: str) -> str:
    """The SQLAlchemy URL as psycopg's own connect() takes it."""
    return (
        make_url(normalise_url(url))
        .set(drivername="postgresql")
        .render_as_string(hide_password=False)
    )


class Listener:
    def __init__(
        self,
        url: str,
        handlers: Mapping[str, Callable[[str], None]],
        *,
        on_connect: Callable[[], None],
    ) -> None:
        self._url = libpq_url(url)
        self._handlers = dict(handlers)
        self._on_connect = on_connect
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        delay = 0.1
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._url,
                    autocommit=True,
                    connect_timeout=5,
                    # A connection that silently died (failover, NAT) is noticed in
                    # about a minute instead of the system's two hours.
                    keepalives=1,
                    keepalives_idle=30,
                    keepalives_interval=10,
                    keepalives_count=3,
                ) as conn:
                    for channel in self._handlers:
                        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    self.connected.set()
                    delay = 0.1
                    self._on_connect()
                    async for note in conn.notifies():
                        handler = self._handlers.get(note.channel)
                        if handler is not None:
                            handler(note.payload)
            except (psycopg.Error, OSError) as exc:
                self.connected.clear()
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                log.warning("cluster.listen_lost", error=first[:200], retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_SECONDS)
