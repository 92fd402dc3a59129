"""``flowhook listen``: a local webhook receiver that prints every delivery it gets.

Point an endpoint's webhook URL at it to watch a flow's outputs arrive. It answers
200 to any POST on any path, optionally behind Basic Auth (to check that the
credentials configured on the endpoint are the ones sent). Given the endpoint's
signing secret (``whsec_...``) it verifies each delivery's Standard Webhooks
signature, prints ``signature OK`` or ``signature INVALID``, and answers 401 to an
invalid one.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import json
import sys
import time
from datetime import UTC, datetime
from typing import TextIO

from aiohttp import web

from flowhook.delivery.signing import verify

REALM = "flowhook listen"


def _credentials_match(header: str | None, user: str, password: str) -> bool:
    """Check a ``Basic`` Authorization header in constant time (user and password)."""
    if not header:
        return False
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    given_user, sep, given_password = decoded.partition(b":")
    # Compare both parts every time so the answer time does not tell which was wrong.
    user_ok = hmac.compare_digest(given_user, user.encode())
    password_ok = hmac.compare_digest(given_password, password.encode())
    return bool(sep) and user_ok and password_ok


def _render(request: web.Request, body: bytes, note: str = "") -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    webhook_id = request.headers.get("webhook-id", "-")
    head = f"--- {stamp} UTC  POST {request.path_qs}  webhook-id: {webhook_id}{note}"
    try:
        text = json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except (ValueError, UnicodeDecodeError):
        text = f"(not JSON, {len(body)} bytes)\n{body.decode('utf-8', 'replace')}"
    return f"{head}\n{text}\n"


def build_listener_app(
    user: str | None, password: str | None, out: TextIO, secret: str | None = None
) -> web.Application:
    """The receiver as an aiohttp application (``serve_listener`` runs it on a socket)."""
    auth_required = user is not None or password is not None

    async def receive(request: web.Request) -> web.Response:
        if auth_required and not _credentials_match(
            request.headers.get("Authorization"), user or "", password or ""
        ):
            out.write(f"--- rejected POST {request.path_qs}: missing or wrong Basic Auth\n")
            out.flush()
            return web.json_response(
                {"ok": False, "error": "unauthorized"},
                status=401,
                headers={"WWW-Authenticate": f'Basic realm="{REALM}"'},
            )
        body = await request.read()
        note = ""
        if secret is not None:
            if not verify(secret, request.headers, body, time.time()):
                webhook_id = request.headers.get("webhook-id", "-")
                out.write(
                    f"--- rejected POST {request.path_qs}  webhook-id: {webhook_id}: "
                    "signature INVALID\n"
                )
                out.flush()
                return web.json_response({"ok": False, "error": "invalid signature"}, status=401)
            note = "  signature OK"
        out.write(_render(request, body, note))
        out.flush()
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", receive)
    return app


async def serve_listener(
    host: str,
    port: int,
    user: str | None,
    password: str | None,
    out: TextIO = sys.stdout,
    ready: asyncio.Event | None = None,
    secret: str | None = None,
) -> None:
    """Serve until cancelled. Prints ``listening on http://HOST:PORT/`` (the real port,
    also when ``port`` is 0) to ``out``, then sets ``ready``."""
    runner = web.AppRunner(build_listener_app(user, password, out, secret), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1] if runner.addresses else port
        shown = f"[{host}]" if ":" in host else host
        auth = " (Basic Auth required)" if user is not None or password is not None else ""
        if secret is not None:
            auth += " (signatures verified)"
        out.write(f"listening on http://{shown}:{bound}/{auth}; Ctrl-C to stop\n")
        out.flush()
        if ready is not None:
            ready.set()
        await asyncio.Event().wait()  # until cancelled
    finally:
        await runner.cleanup()


def run_listener(
    host: str = "127.0.0.1",
    port: int = 8000,
    user: str | None = None,
    password: str | None = None,
    out: TextIO = sys.stdout,
    secret: str | None = None,
) -> None:
    """Blocking entry point for the CLI: serve until Ctrl-C."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_listener(host, port, user, password, out, secret=secret))
