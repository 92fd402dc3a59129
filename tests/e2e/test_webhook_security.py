"""Webhook security end to end: SSRF guard, Standard Webhooks signing, secrets at rest.

Real server, real receivers on loopback, both storage backends.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from structlog.testing import capture_logs

from flowhook.errors import ConfigError
from flowhook.storage import schema as t
from flowhook.tools.listen import serve_listener
from tests.support.server import RunningServer, running_server

REPO = Path(__file__).resolve().parents[2]
FLOWS = REPO / "flows"


@dataclass
class Hit:
    headers: dict[str, str]
    body: bytes


@dataclass
class RawReceiver:
    """Keeps each delivery's exact bytes (signatures are over the raw body)."""

    status: list[int] = field(default_factory=list)  # answers to give, then 200
    hits: list[Hit] = field(default_factory=list)
    url: str = ""
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.hits.append(Hit(dict(request.headers), await request.read()))
        self.arrived.set()
        return web.json_response({}, status=self.status.pop(0) if self.status else 200)

    async def wait_for(self, count: int) -> list[Hit]:
        async with asyncio.timeout(10):
            while len(self.hits) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.hits


@pytest.fixture
async def raw() -> AsyncIterator[RawReceiver]:
    rec = RawReceiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    yield rec
    await runner.cleanup()


async def send(server: RunningServer, ep: dict[str, Any], text: str) -> None:
    status, body = await server.post_message(
        ep, {"userId": "u1", "sessionId": "s1", "text": text, "data": {}}
    )
    assert status == 202, body


def endpoint_rows(server: RunningServer) -> list[dict[str, Any]]:
    with server.services.store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(t.endpoints)).all()]


def attempt_errors(server: RunningServer) -> list[str]:
    with server.services.store.engine.connect() as conn:
        return [str(r.error) for r in conn.execute(select(t.attempts)).all()]


# -- SSRF guard ---------------------------------------------------------------------------

BLOCKED_URLS = [
    "http://127.0.0.1:8000/hook",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://[fe80::1]/hook",
    "http://10.1.2.3/hook",
    "https://192.168.0.10/hook",
    "http://0.0.0.0/hook",
    "http://[::]/hook",
    "http://[fd00::5]/hook",
    "http://224.0.0.251/hook",
]


async def test_blocked_ip_literals_are_refused_at_create_and_update(
    tmp_path: Path, db_url: str
) -> None:
    """Without an allowlist, an endpoint whose webhookUrl is an IP literal in a blocked
    range is refused (400, field webhookUrl, the message names the allowlist setting), on
    create and on update; a host name is accepted (it is checked at connect time)."""
    async with running_server(tmp_path, db_url, FLOWS, webhook_allow_cidrs=[]) as server:
        for url in BLOCKED_URLS:
            status, body = await server.api(
                "POST", "/api/v1/endpoints", {"name": "x", "flow": "echo", "webhookUrl": url}
            )
            assert status == 400, (url, body)
            assert body["error"]["field"] == "webhookUrl"
            assert "webhook_allow_cidrs" in body["error"]["message"]
            assert "FLOWHOOK_WEBHOOK_ALLOW_CIDRS" in body["error"]["message"]
        ep = await server.create_endpoint(
            name="ok", flow="echo", webhookUrl="https://hooks.example.com/in"
        )
        status, body = await server.api(
            "PATCH", f"/api/v1/endpoints/{ep['id']}", {"webhookUrl": "http://[::ffff:a00:1]/"}
        )
        assert status == 400, body
        assert body["error"]["field"] == "webhookUrl"
        assert (await server.api("GET", f"/api/v1/endpoints/{ep['id']}"))[1]["webhookUrl"] == (
            "https://hooks.example.com/in"
        )


async def test_name_resolving_to_loopback_is_refused_at_connect_time(
    tmp_path: Path, db_url: str, raw: RawReceiver
) -> None:
    """A webhook URL naming 'localhost' (which resolves to 127.0.0.1) passes creation, but
    without an allowlist no delivery ever reaches the receiver listening there: each attempt
    fails with a clear SSRF error, is retried per policy, and the output ends failed."""
    port = raw.url.split(":")[2].split("/")[0]
    async with running_server(tmp_path, db_url, FLOWS, webhook_allow_cidrs=[]) as server:
        ep = await server.create_endpoint(
            name="local", flow="echo", webhookUrl=f"http://localhost:{port}/hook"
        )
        await send(server, ep, "hello")
        await server.services.run_until_idle(timeout=20)
        assert raw.hits == []
        errors = attempt_errors(server)
        assert len(errors) == 4  # first attempt + 3 retries of the test schedule
        assert all(
            "refused by the SSRF guard: localhost resolves to a blocked address" in e
            for e in errors
        ), errors
        assert await server.services.store.delivery_counts() == {"failed": 1}


async def test_allowlist_lets_deliveries_reach_loopback_by_name(
    tmp_path: Path, db_url: str, raw: RawReceiver
) -> None:
    """With loopback in webhook_allow_cidrs, the same 'localhost' URL is delivered to."""
    port = raw.url.split(":")[2].split("/")[0]
    async with running_server(
        tmp_path, db_url, FLOWS, webhook_allow_cidrs=["127.0.0.0/8", "::1/128"]
    ) as server:
        ep = await server.create_endpoint(
            name="local", flow="echo", webhookUrl=f"http://localhost:{port}/hook"
        )
        await send(server, ep, "hello")
        await raw.wait_for(1)
        await server.services.run_until_idle(timeout=20)
        assert await server.services.store.delivery_counts() == {"delivered": 1}


# -- signing ------------------------------------------------------------------------------


async def test_deliveries_are_signed_and_verify_with_standardwebhooks(
    tmp_path: Path, db_url: str, raw: RawReceiver
) -> None:
    """signing: true returns a whsec_ secret once; GET/list never show it; every delivery
    carries webhook-id/-timestamp/-signature that the standardwebhooks package accepts.
    After a rotation both secrets sign during the grace period."""
    async with running_server(tmp_path, db_url, FLOWS) as server:
        ep = await server.create_endpoint(
            name="signed", flow="echo", webhookUrl=raw.url, signing=True
        )
        secret = ep["signingSecret"]
        assert secret.startswith("whsec_")
        assert ep["signing"] is True
        _, shown = await server.api("GET", f"/api/v1/endpoints/{ep['id']}")
        _, listed = await server.api("GET", "/api/v1/endpoints")
        assert "signingSecret" not in shown
        assert secret not in json.dumps(shown) + json.dumps(listed)
        assert shown["signing"] is True
        assert shown["signingSecretRotatedAt"] is not None

        await send(server, ep, "one")
        (hit,) = await raw.wait_for(1)
        assert "one" in json.dumps(Webhook(secret).verify(hit.body, hit.headers))
        assert hit.headers["webhook-id"].startswith("msg_")

        status, rotated = await server.api(
            "POST", f"/api/v1/endpoints/{ep['id']}/signing-secret/rotate"
        )
        assert status == 200, rotated
        new = rotated["signingSecret"]
        assert new.startswith("whsec_")
        assert new != secret
        assert rotated["previousSecretExpiresAt"] is not None
        _, shown = await server.api("GET", f"/api/v1/endpoints/{ep['id']}")
        assert new not in json.dumps(shown)

        await send(server, ep, "two")
        hits = await raw.wait_for(2)
        second = hits[1]
        assert len(second.headers["webhook-signature"].split(" ")) == 2
        Webhook(new).verify(second.body, second.headers)
        Webhook(secret).verify(second.body, second.headers)


async def test_without_grace_the_old_secret_stops_signing_at_rotation(
    tmp_path: Path, db_url: str, raw: RawReceiver
) -> None:
    """With signing_secret_grace_seconds=0 only the new secret signs after a rotation;
    an endpoint without signing sends no signature headers."""
    async with running_server(
        tmp_path, db_url, FLOWS, signing_secret_grace_seconds=0, endpoint_cache_seconds=0
    ) as server:
        ep = await server.create_endpoint(name="plain", flow="echo", webhookUrl=raw.url)
        assert ep["signing"] is False
        assert ep["signingSecret"] is None
        await send(server, ep, "unsigned")
        (plain,) = await raw.wait_for(1)
        assert "webhook-signature" not in plain.headers

        _, first = await server.api("POST", f"/api/v1/endpoints/{ep['id']}/signing-secret/rotate")
        assert first["previousSecretExpiresAt"] is None  # signing switched on
        _, second = await server.api("POST", f"/api/v1/endpoints/{ep['id']}/signing-secret/rotate")
        await send(server, ep, "signed")
        hit = (await raw.wait_for(2))[1]
        assert len(hit.headers["webhook-signature"].split(" ")) == 1
        Webhook(second["signingSecret"]).verify(hit.body, hit.headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(first["signingSecret"]).verify(hit.body, hit.headers)

        status, off = await server.api("PATCH", f"/api/v1/endpoints/{ep['id']}", {"signing": False})
        assert status == 200
        assert off["signing"] is False
        assert all(r["signing_secret"] is None for r in endpoint_rows(server))
        status, body = await server.api("PATCH", f"/api/v1/endpoints/{ep['id']}", {"signing": True})
        assert status == 400
        assert "rotate" in body["error"]["message"]


async def test_listen_verifies_signatures(tmp_path: Path, db_url: str) -> None:
    """flowhook listen --secret prints 'signature OK' for a delivery signed with its secret;
    with another secret it answers 401 and prints 'signature INVALID'."""
    async with running_server(tmp_path, db_url, FLOWS) as server:
        ep = await server.create_endpoint(
            name="l", flow="echo", webhookUrl="https://placeholder.example/", signing=True
        )
        for secret, expected in ((ep["signingSecret"], "signature OK"), (None, "INVALID")):
            out = io.StringIO()
            ready = asyncio.Event()
            listener = asyncio.create_task(
                serve_listener(
                    "127.0.0.1",
                    0,
                    None,
                    None,
                    out,
                    ready,
                    secret=secret or "whsec_" + "A" * 43 + "=",
                )
            )
            try:
                async with asyncio.timeout(5):
                    await ready.wait()
                match = re.search(r"listening on (http://\S+/)", out.getvalue())
                assert match
                status, _ = await server.api(
                    "PATCH", f"/api/v1/endpoints/{ep['id']}", {"webhookUrl": match.group(1)}
                )
                assert status == 200
                await send(server, ep, expected)
                await server.services.run_until_idle(timeout=20)
                assert expected in out.getvalue(), out.getvalue()
            finally:
                listener.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await listener
        errors = attempt_errors(server)
        # The good delivery was taken at once; the badly signed one was refused every time.
        assert sorted(errors) == ["HTTP 401"] * 4 + ["None"]


# -- secrets at rest ----------------------------------------------------------------------


async def test_secrets_are_encrypted_at_rest_and_never_shown_or_logged(
    tmp_path: Path, db_url: str, raw: RawReceiver
) -> None:
    """The raw endpoints row holds neither the webhook password nor the signing secret in
    clear; deliveries still carry the right Basic Auth; no API answer after creation and no
    log line contains either; the key file is 0600 and survives a restart."""
    password = "Tr0ub4dor&3-horse"
    raw.status = [500]  # one failed attempt, so failure paths log too
    with capture_logs() as logs:
        async with running_server(tmp_path, db_url, FLOWS) as server:
            ep = await server.create_endpoint(
                name="sec",
                flow="echo",
                webhookUrl=raw.url,
                webhookUser="bot",
                webhookPassword=password,
                signing=True,
            )
            secret = ep["signingSecret"]
            assert password not in json.dumps(ep)
            (row,) = endpoint_rows(server)
            stored = json.dumps(row, default=str)
            assert password not in stored
            assert secret not in stored
            assert secret.removeprefix("whsec_") not in stored
            assert row["webhook_password"].startswith("v1:")
            assert row["signing_secret"].startswith("v1:")

            await send(server, ep, "hi")
            await raw.wait_for(2)
            await server.services.run_until_idle(timeout=20)
            _, shown = await server.api("GET", f"/api/v1/endpoints/{ep['id']}")
            assert shown["hasWebhookPassword"] is True
            assert password not in json.dumps(shown)
            assert secret not in json.dumps(shown)

        key_file = tmp_path / "data" / "secret-key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

        # Restart on the same data dir and database: the key file still opens the secrets.
        async with running_server(tmp_path, db_url, FLOWS) as server:
            await send(
                server, (await server.api("GET", f"/api/v1/endpoints/{ep['id']}"))[1], "again"
            )
            await raw.wait_for(3)
    auth = base64.b64encode(f"bot:{password}".encode()).decode()
    assert all(h.headers["Authorization"] == f"Basic {auth}" for h in raw.hits)
    Webhook(secret).verify(raw.hits[-1].body, raw.hits[-1].headers)
    logged = repr(logs)
    assert password not in logged
    assert secret not in logged
    assert "delivery attempt failed" in logged  # the failure path was exercised


async def test_a_different_master_key_cannot_open_stored_secrets(
    tmp_path: Path, db_url: str, raw: RawReceiver
) -> None:
    """With FLOWHOOK_SECRET_KEY set to another key, stored secrets would not decrypt: the
    server refuses to start with a clear error (never a key or the password), nothing is
    delivered, and no key file is written."""
    async with running_server(tmp_path, db_url, FLOWS, secret_key="A" * 43 + "=") as server:
        await server.create_endpoint(
            name="k", flow="echo", webhookUrl=raw.url, webhookUser="bot", webhookPassword="pw-x1"
        )
    assert not (tmp_path / "data" / "secret-key").exists()
    with pytest.raises(ConfigError) as info:
        async with running_server(tmp_path, db_url, FLOWS, secret_key="B" * 43 + "="):
            pass
    assert "cannot read this database's stored secrets" in info.value.message
    assert "pw-x1" not in info.value.message
    assert "BBBB" not in info.value.message
    assert raw.hits == []
    assert not (tmp_path / "data" / "secret-key").exists()
