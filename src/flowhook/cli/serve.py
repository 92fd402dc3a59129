"""``flowhook serve``: build the services, print how to use them, run uvicorn."""

from __future__ import annotations

import importlib.util
import sys

import uvicorn
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from flowhook.allocator import tune_allocator
from flowhook.cli import listen_socket
from flowhook.collector import tune_collector
from flowhook.config import Settings
from flowhook.errors import FlowhookError
from flowhook.http.app import create_app
from flowhook.http.connections import uvicorn_limits
from flowhook.http.fast_ingress import ingress_handler_of
from flowhook.logs import configure_logging
from flowhook.services import build_services
from flowhook.storage import single_writer
from flowhook.storage.engine import normalise_url


def shown_token(token: str, generated: bool, on_terminal: bool) -> str:
    """The admin token as the banner shows it.

    In full only when a person reads the terminal. When stderr is not a terminal (a
    log collector, a file, a pipe) only its first characters, even when it was just
    generated: the banner says which file (mode 0600) holds it, so the operator can
    read it there, and the secret never ends up stored in logs.
    """
    if on_terminal:
        return token
    return token[:8] + "…"


def banner(
    settings: Settings, token: str, generated: bool, flows: list[str], on_terminal: bool
) -> str:
    base = settings.base_url
    where = "generated now, stored in" if generated else "from"
    if generated and not on_terminal:
        where = "generated now; read it in"
    source = (
        "FLOWHOOK_ADMIN_TOKEN" if settings.admin_token else str(settings.data_dir / "admin-token")
    )
    token = shown_token(token, generated, on_terminal)
    storage = make_url(normalise_url(settings.resolved_database_url)).render_as_string(
        hide_password=True
    )
    if settings.role == "worker":
        return f"""
flowhook is running (role worker: turns and delivery; no ingress, no admin API)
  health       {base}/healthz   {base}/readyz   {base}/metrics
  storage      {storage}
  flows        {", ".join(flows)}   (from {settings.flows_dir})
"""
    role = "" if settings.role == "both" else f" (role {settings.role}: no turns, no delivery)"
    return f"""
flowhook is running{role}
  console      {base}/   (sign in with the admin token)
  ingress      {base}/endpoint/<urlToken>
  admin API    {base}/api/v1   (docs: {base}/docs)
  admin token  {token}   ({where} {source})
  storage      {storage}
  flows        {", ".join(flows)}   (from {settings.flows_dir})

Create an endpoint:
  curl -s -X POST {base}/api/v1/endpoints \\
    -H "Authorization: Bearer {token}" -H "Content-Type: application/json" \\
    -d '{{"name": "demo", "flow": "echo", "webhookUrl": "http://127.0.0.1:8000/hook"}}'
"""


def serve_forever(settings: Settings) -> None:
    configure_logging(settings.log_level, settings.log_format)
    tune_allocator()  # before the threads start: their arenas follow it
    try:
        # Before anything else: a second server on the same SQLite database exits here.
        writer_lock = single_writer.acquire(settings.resolved_database_url)
        services = build_services(settings)
        sock = listen_socket.bind(settings.host, settings.port)
    except FlowhookError as exc:  # e.g. invalid flows: every problem, as file:line
        sys.stderr.write(f"error: {exc.message}\n")
        raise SystemExit(1) from None
    except SQLAlchemyError as exc:  # the database cannot be opened or migrated
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        sys.stderr.write(f"error: cannot open the database: {first}\n")
        raise SystemExit(1) from None
    app = create_app(services)
    tune_collector()  # the server is built: what exists now lives as long as it
    # The port is bound: only now is the server announced.
    sys.stderr.write(
        banner(
            settings,
            services.admin_token,
            services.admin_token_generated,
            services.engine.flow_names(),
            on_terminal=sys.stderr.isatty(),
        )
        + "\n"
    )
    sys.stderr.flush()
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        timeout_graceful_shutdown=10,
        # header-read and keep-alive timeouts, a cap on open connections (503 beyond);
        # the ingress route answered by the protocol itself
        **uvicorn_limits(settings, ingress_handler_of(app)),
    )
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
        writer_lock.release()
