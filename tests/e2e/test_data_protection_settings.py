"""Input sanitization, masked analytics and contact profiles, through the real server,
a real receiver and both databases."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from flowhook.cli import context as cli_context
from flowhook.cli.main import app
from tests.support.receiver import Receiver
from tests.support.server import RunningServer, running_server

REPO = Path(__file__).resolve().parents[2]
HOSTILE = (
    '<script>alert("x")</script>hi <b onclick="steal()">there</b> '
    '<a href=" java\tscript:go()">link</a> 2 < 3 & 4 > 1<iframe src=//evil>'
)
HOSTILE_DATA = {"deep": [{"html": "<img src=x onerror=alert(1)>ok"}], "n": 3}


async def transcript(server: RunningServer, ep: dict[str, Any], session: str) -> list[Any]:
    status, body = await server.api(
        "GET", f"/api/v1/endpoints/{ep['id']}/sessions/{session}/transcript"
    )
    assert status == 200, body
    items: list[Any] = body["items"]
    return items


async def test_defaults_of_the_data_protection_settings(
    server: RunningServer, receiver: Receiver
) -> None:
    """A new endpoint sanitizes input, keeps contact profiles, transcripts and analytics,
    and masks nothing: the defaults of the reference's settings."""
    ep = await server.create_endpoint(name="d", flow="echo", webhookUrl=receiver.url)
    assert {
        k: ep[k]
        for k in (
            "inputSanitization",
            "maskSensitiveAnalytics",
            "maskSensitiveLogging",
            "maskIpAddresses",
            "contactProfiles",
            "storeTranscripts",
            "collectAnalytics",
        )
    } == {
        "inputSanitization": True,
        "maskSensitiveAnalytics": False,
        "maskSensitiveLogging": False,
        "maskIpAddresses": False,
        "contactProfiles": True,
        "storeTranscripts": True,
        "collectAnalytics": True,
    }


async def test_harmful_html_is_stripped_before_the_flow_unless_switched_off(
    server: RunningServer, receiver: Receiver
) -> None:
    """With input sanitization (the default) scripts, iframes, event handlers and
    javascript: links are gone from the text and data the flow sees and the transcript
    keeps, while ordinary text and harmless markup stay; switched off, the input passes
    as sent."""
    on = await server.create_endpoint(name="on", flow="echo", webhookUrl=receiver.url)
    off = await server.create_endpoint(
        name="off", flow="echo", webhookUrl=receiver.url, inputSanitization=False
    )
    msg = {"userId": "u1", "sessionId": "s1", "text": HOSTILE, "data": HOSTILE_DATA}
    assert (await server.post_message(on, msg))[0] == 202
    (clean,) = await receiver.wait_for(1)
    assert clean.body["AIOutput"]["text"] == ("You said: hi <b>there</b> <a>link</a> 2 < 3 & 4 > 1")
    assert clean.body["AIOutput"]["data"] == {"deep": [{"html": "<img src=x>ok"}], "n": 3}
    entry = (await transcript(server, on, "s1"))[0]
    assert "script" not in entry["text"]
    assert "onerror" not in str(entry["data"])

    assert (await server.post_message(off, msg))[0] == 202
    await receiver.wait_for(2)
    raw = receiver.bodies()[1]["AIOutput"]
    assert raw["text"] == f"You said: {HOSTILE}"
    assert raw["data"] == HOSTILE_DATA


async def test_masked_analytics_is_separate_from_masked_logging(
    server: RunningServer, receiver: Receiver
) -> None:
    """maskSensitiveAnalytics keeps text, data and the client's address out of the
    transcript while outputs still say disableSensitiveLogging: false (logging is
    unmasked); analytics still count the turn."""
    ep = await server.create_endpoint(
        name="a", flow="echo", webhookUrl=receiver.url, maskSensitiveAnalytics=True
    )
    await server.post_message(ep, {"userId": "u1", "sessionId": "s1", "text": "IBAN DE89 3704"})
    (delivery,) = await receiver.wait_for(1)
    assert delivery.body["AIOutput"]["disableSensitiveLogging"] is False
    items = await transcript(server, ep, "s1")
    assert [(i["direction"], i["text"], i["data"], i["clientIp"]) for i in items] == [
        ("in", None, None, None),
        ("out", None, None, None),
    ]

    def raw_rows(conn: Any) -> list[Any]:
        return list(conn.exec_driver_sql("SELECT text, data, client_ip FROM transcripts").all())

    assert "3704" not in str(await server.services.store._read(raw_rows))
    status, stats = await server.api("GET", f"/api/v1/endpoints/{ep['id']}/analytics")
    assert (status, stats["turns"]) == (200, 1)


COUNTER_FLOW = """
name: counter
nodes:
  count:
    type: set
    profile:
      visits: "{{ (profile.visits or 0) + 1 }}"
    next: tell
  tell:
    type: say
    text: "visit {{ profile.visits }}"
"""


async def test_contact_profiles_off_keeps_nothing_per_user(
    tmp_path: Path, db_url: str, receiver: Receiver
) -> None:
    """With contactProfiles off the flow sees an empty profile on every turn and nothing
    is stored for the user; switched back on, profiles are kept again."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "counter.yaml").write_text(COUNTER_FLOW)
    async with running_server(tmp_path, db_url, flows_dir=flows) as srv:
        ep = await srv.create_endpoint(
            name="c", flow="counter", webhookUrl=receiver.url, contactProfiles=False
        )
        for session in ("s1", "s2", "s1"):
            await srv.post_message(ep, {"userId": "alice", "sessionId": session, "text": "hi"})
        await receiver.wait_for(3)
        assert [b["AIOutput"]["text"] for b in receiver.bodies()] == ["visit 1"] * 3
        assert await srv.services.store.load_profile(ep["id"], "alice") is None
        path = f"/api/v1/endpoints/{ep['id']}"
        status, body = await srv.api("PATCH", path, {"contactProfiles": None})
        assert (status, body["contactProfiles"]) == (200, True)
        for _ in range(2):
            await srv.post_message(ep, {"userId": "alice", "sessionId": "s3", "text": "hi"})
        await receiver.wait_for(5)
        assert [b["AIOutput"]["text"] for b in receiver.bodies()[3:]] == ["visit 1", "visit 2"]
        assert await srv.services.store.load_profile(ep["id"], "alice") == {"visits": 2}


def test_cli_sets_any_setting_by_its_api_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`endpoints create|update --set name=json` sets the new settings from the command
    line (a bare word is a string); an unknown name exits 2 naming it."""
    for name in [k for k in os.environ if k.startswith("FLOWHOOK_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("FLOWHOOK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FLOWHOOK_FLOWS_DIR", str(REPO / "flows"))
    monkeypatch.setenv("FLOWHOOK_WEBHOOK_ALLOW_CIDRS", "127.0.0.0/8")
    # In process, the CLI must leave the suite's logging set-up alone (loggers already
    # in use keep the processors they were configured with).
    monkeypatch.setattr(cli_context, "configure_logging", lambda *_a, **_k: None)
    runner = CliRunner()

    def cli(*args: str) -> Any:
        return runner.invoke(app, list(args))

    created = cli(
        "endpoints", "create", "--name", "c", "--flow", "echo",
        "--webhook", "http://127.0.0.1:9/hook",
        "--set", "inputSanitization=false", "--set", "copilotFlow=echo",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    ep = json.loads(created.stdout)
    assert (ep["inputSanitization"], ep["copilotFlow"]) == (False, "echo")
    updated = cli("endpoints", "update", ep["id"], "--set", "maskSensitiveAnalytics=true")
    assert updated.exit_code == 0, updated.output
    assert json.loads(updated.stdout)["maskSensitiveAnalytics"] is True
    unknown = cli("endpoints", "update", ep["id"], "--set", "noSuchSetting=1")
    assert unknown.exit_code == 2
    assert "noSuchSetting" in unknown.output
