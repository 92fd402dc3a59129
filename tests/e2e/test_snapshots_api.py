"""Snapshots through the admin API of real servers: export from one installation (SQLite),
import into a fresh one (each backend), and the imported endpoints work there."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tests.support.receiver import Receiver
from tests.support.server import RunningServer, running_server

PASSPHRASE = "correct horse battery staple"
PASSWORD = "s3cret-webhook-pw"
GREET = """\
name: greet
start: hello
nodes:
  hello:
    type: say
    text: "greet flow heard: {{ input.text }}"
"""


@asynccontextmanager
async def installation(
    root: Path, db_url: str, flows: dict[str, str] | None = None
) -> AsyncIterator[RunningServer]:
    """A server with its own data dir and flows dir under ``root``."""
    flows_dir = root / "flows"
    flows_dir.mkdir(parents=True, exist_ok=True)
    for name, text in (flows or {}).items():
        (flows_dir / name).write_text(text)
    async with running_server(root, db_url, flows_dir=flows_dir) as server:
        yield server


async def export(server: RunningServer, *, secrets: bool) -> tuple[int, str]:
    headers = dict(server.admin)
    if secrets:
        headers["X-Snapshot-Passphrase"] = PASSPHRASE
    url = f"{server.base_url}/api/v1/snapshot" + ("?includeSecrets=true" if secrets else "")
    async with server.http.get(url, headers=headers) as resp:
        return resp.status, await resp.text()


async def import_(
    server: RunningServer, text: str, *, passphrase: str | None = None, query: str = ""
) -> tuple[int, Any]:
    headers = {**server.admin, "Content-Type": "application/json"}
    if passphrase is not None:
        headers["X-Snapshot-Passphrase"] = passphrase
    async with server.http.post(
        f"{server.base_url}/api/v1/snapshot{query}", data=text.encode(), headers=headers
    ) as resp:
        return resp.status, await resp.json()


async def populate(source: RunningServer, receiver: Receiver) -> dict[str, Any]:
    """A Basic Auth + signing endpoint on an exported flow, and an API-key endpoint."""
    basic = await source.create_endpoint(
        name="basic",
        flow="greet",
        webhookUrl=receiver.url,
        webhookUser="bot",
        webhookPassword=PASSWORD,
        signing=True,
        locale="de-DE",
    )
    keyed = await source.create_endpoint(
        name="keyed", flow="echo", webhookUrl=receiver.url, authMethod="apiKey"
    )
    status, key = await source.api("POST", f"/api/v1/endpoints/{keyed['id']}/api-keys", {})
    assert status == 201
    return {"basic": basic, "keyed": keyed, "key": key["key"]}


async def test_import_into_a_fresh_installation_works_and_needs_new_api_keys(
    tmp_path: Path, db_url: str, receiver: Receiver
) -> None:
    """A snapshot exported with secrets holds no API key, URL token, password or signing
    secret in clear; imported into a fresh installation (new database, empty flows dir)
    it brings the flow file and the endpoints (new URL tokens, same settings): a message
    sent to the imported endpoint runs the imported flow and reaches a real receiver with
    the original Basic Auth password and a signature; the import reports that the API-key
    endpoint needs a new key, which then works."""
    async with installation(
        tmp_path / "a", f"sqlite:///{tmp_path / 'a.db'}", {"greet.yaml": GREET}
    ) as a:
        made = await populate(a, receiver)
        status, text = await export(a, secrets=True)
    assert status == 200
    snapshot = json.loads(text)
    assert snapshot["format"] == "flowhook-snapshot"
    assert snapshot["version"] == 1
    for clear in (
        made["key"],
        made["basic"]["signingSecret"],
        PASSWORD,
        made["basic"]["urlToken"],
        made["keyed"]["urlToken"],
    ):
        assert clear not in text
    assert [f["file"] for f in snapshot["flows"]] == ["greet.yaml"]

    async with installation(tmp_path / "b", db_url) as b:
        status, result = await import_(b, text, passphrase=PASSPHRASE)
        assert status == 200, result
        assert result["needsApiKey"] == ["keyed"]
        assert result["lostSecrets"] == {}
        assert (tmp_path / "b" / "flows" / "greet.yaml").read_text() == GREET

        status, listed = await b.api("GET", "/api/v1/endpoints")
        by_name = {e["name"]: e for e in listed["items"]}
        basic = by_name["basic"]
        assert (basic["flow"], basic["webhookUser"], basic["locale"]) == ("greet", "bot", "de-DE")
        assert basic["hasWebhookPassword"] is True
        assert basic["signing"] is True
        assert basic["urlToken"] != made["basic"]["urlToken"]

        status, _ = await b.post_message(basic, {"userId": "u", "sessionId": "s", "text": "hi"})
        assert status == 202
        (delivery,) = await receiver.wait_for(1)
        assert delivery.body["AIOutput"]["text"] == "greet flow heard: hi"
        expected = "Basic " + base64.b64encode(f"bot:{PASSWORD}".encode()).decode()
        assert delivery.headers["Authorization"] == expected
        assert delivery.headers["webhook-signature"].startswith("v1,")

        keyed = by_name["keyed"]
        msg = {"userId": "u", "sessionId": "k", "text": "with key"}
        assert (await b.post_message(keyed, msg, key=made["key"]))[0] == 401
        status, key = await b.api("POST", f"/api/v1/endpoints/{keyed['id']}/api-keys", {})
        assert (await b.post_message(keyed, msg, key=key["key"]))[0] == 202
        await receiver.wait_for(2)


async def test_without_secrets_the_import_names_what_was_lost(
    tmp_path: Path, db_url: str, receiver: Receiver
) -> None:
    """Exported without secrets, the snapshot still says which endpoint had a password and
    a signing secret; the import reports both as lost, and deliveries go out without
    the password and unsigned until they are set again."""
    async with installation(
        tmp_path / "a", f"sqlite:///{tmp_path / 'a.db'}", {"greet.yaml": GREET}
    ) as a:
        await populate(a, receiver)
        status, text = await export(a, secrets=False)
    assert status == 200
    assert json.loads(text)["secrets"] is None
    async with installation(tmp_path / "b", db_url) as b:
        status, result = await import_(b, text)
        assert status == 200, result
        assert result["lostSecrets"] == {"basic": ["webhookPassword", "signingSecret"]}
        assert result["needsApiKey"] == ["keyed"]
        basic = next(
            e for e in (await b.api("GET", "/api/v1/endpoints"))[1]["items"] if e["name"] == "basic"
        )
        assert (basic["hasWebhookPassword"], basic["signing"]) == (False, False)
        await b.post_message(basic, {"userId": "u", "sessionId": "s", "text": "plain"})
        (delivery,) = await receiver.wait_for(1)
        sent_auth = base64.b64decode(delivery.headers.get("Authorization", "Basic ")[6:])
        assert PASSWORD.encode() not in sent_auth
        assert "webhook-signature" not in delivery.headers


async def test_wrong_passphrase_is_a_clear_error_and_imports_nothing(
    tmp_path: Path, db_url: str, receiver: Receiver
) -> None:
    """A wrong passphrase answers 400 wrong_passphrase (without echoing it), and neither an
    endpoint nor a flow file is created; no passphrase at all is a 400 that says how to
    give one."""
    async with installation(
        tmp_path / "a", f"sqlite:///{tmp_path / 'a.db'}", {"greet.yaml": GREET}
    ) as a:
        await populate(a, receiver)
        _, text = await export(a, secrets=True)
    async with installation(tmp_path / "b", db_url) as b:
        status, body = await import_(b, text, passphrase="not the passphrase")
        assert status == 400
        assert body["error"]["code"] == "wrong_passphrase"
        assert "wrong passphrase" in body["error"]["message"]
        assert "not the passphrase" not in json.dumps(body)
        status, body = await import_(b, text)
        assert status == 400
        assert "X-Snapshot-Passphrase" in body["error"]["message"]
        assert (await b.api("GET", "/api/v1/endpoints"))[1]["items"] == []
        assert list((tmp_path / "b" / "flows").iterdir()) == []


async def test_an_invalid_flow_rejects_the_whole_import_listing_every_problem(
    tmp_path: Path, db_url: str, receiver: Receiver
) -> None:
    """A snapshot with two broken flow files, an unsafe file name and an endpoint on a flow
    that exists nowhere imports nothing: the 400 answer lists each of those problems,
    and the target keeps no flow file and no endpoint."""
    async with installation(
        tmp_path / "a", f"sqlite:///{tmp_path / 'a.db'}", {"greet.yaml": GREET}
    ) as a:
        await populate(a, receiver)
        _, text = await export(a, secrets=False)
    snapshot = json.loads(text)
    snapshot["flows"] += [
        {
            "file": "broken.yaml",
            "text": "name: broken\nstart: nowhere\nnodes:\n  a: {type: say, text: hi}\n",
        },
        {
            "file": "bad-node.yaml",
            "text": "name: bad-node\nstart: a\nnodes:\n  a: {type: teleport}\n",
        },
        {"file": "../escape.yaml", "text": GREET.replace("greet", "escape")},
    ]
    snapshot["endpoints"][1]["settings"]["flow"] = "missing-flow"
    async with installation(tmp_path / "b", db_url) as b:
        status, body = await import_(b, json.dumps(snapshot))
        assert status == 400, body
        assert body["error"]["code"] == "snapshot_invalid"
        problems = body["error"]["problems"]
        joined = "\n".join(p["message"] for p in problems)
        assert "snapshot:broken.yaml" in joined
        assert "nowhere" in joined
        assert "snapshot:bad-node.yaml" in joined
        assert "teleport" in joined
        assert "'../escape.yaml' is not allowed" in joined
        assert "endpoint 'keyed': flow 'missing-flow'" in joined
        assert (await b.api("GET", "/api/v1/endpoints"))[1]["items"] == []
        assert list((tmp_path / "b" / "flows").iterdir()) == []
        assert not (tmp_path / "b" / "escape.yaml").exists()


async def test_export_with_secrets_needs_a_passphrase(tmp_path: Path, db_url: str) -> None:
    """Asking for secrets without a passphrase (or with a too short one) is a 400 that
    names the header; no snapshot is returned."""
    async with installation(tmp_path / "a", db_url) as a:
        headers = dict(a.admin)
        url = f"{a.base_url}/api/v1/snapshot?includeSecrets=true"
        async with a.http.get(url, headers=headers) as resp:
            assert resp.status == 400
            assert "X-Snapshot-Passphrase" in (await resp.json())["error"]["message"]
        headers["X-Snapshot-Passphrase"] = "short"
        async with a.http.get(url, headers=headers) as resp:
            assert resp.status == 400
            assert "at least 8 characters" in (await resp.json())["error"]["message"]
        async with a.http.get(f"{a.base_url}/api/v1/snapshot") as resp:
            assert resp.status == 401
