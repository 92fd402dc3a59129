"""A turn can fail; a session cannot stall.

A failing turn ends its message ``failed`` with its reason (message id, trace id, node),
counted in a metric, visible through the admin API and the CLI, with the endpoint's
error reply delivered like any output; the session's next messages go on in order. A
commit storage keeps refusing is retried without running the flow again, then failed.
Real servers, receivers and databases (SQLite and PostgreSQL); the storage refusal is a
real trigger in the database.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import text

from flowhook.storage.records import InboundMessage
from tests.support.receiver import Receiver
from tests.support.server import RunningServer, running_server

FLOW = """
name: sider
start: side
nodes:
  side:
    type: http
    method: POST
    url: "{side_url}"
    body: {{text: "{{{{ input.text }}}}"}}
    next: check
  check:
    type: if
    condition: "input.text == 'boom'"
    then: boom
    else: echo
  boom:
    type: say
    text: "{{{{ 1 / 0 }}}}"
  echo:
    type: say
    text: "You said: {{{{ input.text }}}}"
"""

SQLITE_TRIGGER = (
    "CREATE TRIGGER refuse_poison BEFORE INSERT ON transcripts "
    "WHEN NEW.text LIKE '%poison-commit%' BEGIN SELECT RAISE(ABORT, 'refused by trigger'); END"
)
PG_TRIGGER = [
    "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN "
    "IF NEW.text LIKE '%poison-commit%' THEN RAISE EXCEPTION 'refused by trigger'; END IF; "
    "RETURN NEW; END $$ LANGUAGE plpgsql",
    "CREATE TRIGGER refuse_poison BEFORE INSERT ON transcripts FOR EACH ROW "
    "EXECUTE FUNCTION refuse_poison()",
]


def flows_dir(tmp_path: Path, receiver: Receiver) -> Path:
    flows = tmp_path / "flows"
    flows.mkdir()
    side_url = receiver.url.replace("/hook", "/side")
    (flows / "sider.yaml").write_text(FLOW.format(side_url=side_url))
    return flows


def hook_texts(receiver: Receiver, session: str) -> list[str]:
    return [
        d.body["AIOutput"]["text"]
        for d in receiver.deliveries
        if d.path == "/hook" and d.body["sessionId"] == session
    ]


def side_effects(receiver: Receiver, text_: str) -> int:
    return sum(1 for d in receiver.deliveries if d.path == "/side" and d.body["text"] == text_)


async def messages(server: RunningServer, ep: dict[str, Any], **query: str) -> list[Any]:
    status, page = await server.api(
        "GET",
        f"/api/v1/endpoints/{ep['id']}/messages?" + "&".join(f"{k}={v}" for k, v in query.items()),
    )
    assert status == 200, page
    return list(page["items"])


async def test_failed_turn_is_recorded_replied_and_the_session_goes_on(
    tmp_path: Path, db_url: str, receiver: Receiver
) -> None:
    """A flow error fails its message with message id, trace id and node; the error reply
    is delivered; the metric counts it; API and CLI show it; the next message runs."""
    async with running_server(tmp_path, db_url, flows_dir=flows_dir(tmp_path, receiver)) as server:
        ep = await server.create_endpoint(
            name="f", flow="sider", webhookUrl=receiver.url, errorReply="Sorry, try again."
        )
        for t in ("one", "boom", "two"):
            status, _ = await server.post_message(ep, {"userId": "u", "sessionId": "s", "text": t})
            assert status == 202
        await server.services.run_until_idle(30)
        await receiver.wait_for(6)
        assert hook_texts(receiver, "s") == ["You said: one", "Sorry, try again.", "You said: two"]
        (failed,) = await messages(server, ep, status="failed")
        assert failed["status"] == "failed"
        assert f"message {failed['id']} (traceId {failed['traceId']})" in failed["error"]
        assert "at node sider/boom" in failed["error"]
        assert "ZeroDivisionError" in failed["error"]
        status, one = await server.api("GET", f"/api/v1/messages/{failed['id']}")
        assert (status, one["error"]) == (200, failed["error"])
        async with server.http.get(server.base_url + "/metrics") as resp:
            metrics = await resp.text()
        assert 'flowhook_messages_failed_total{reason="flow_error"} 1.0' in metrics
        done = await messages(server, ep, status="done")
        assert len(done) == 2
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "flowhook", "messages", "show", str(failed["id"])],
        env={
            **os.environ,
            "FLOWHOOK_DATA_DIR": str(tmp_path / "data"),
            "FLOWHOOK_DATABASE_URL": db_url,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["error"] == failed["error"]


async def test_a_commit_storage_keeps_refusing_fails_the_message_without_rerunning_the_flow(
    tmp_path: Path, db_url: str, receiver: Receiver
) -> None:
    """Storage refuses one turn's commit every time: only the write is retried (the flow's
    HTTP call happens once), then the message ends failed with the reason, and the
    session's next message is delivered, in order."""
    async with running_server(
        tmp_path, db_url, flows_dir=flows_dir(tmp_path, receiver), turn_commit_tries=3
    ) as server:
        with server.services.store.engine.begin() as conn:
            for statement in [SQLITE_TRIGGER] if db_url.startswith("sqlite") else PG_TRIGGER:
                conn.execute(text(statement))
        ep = await server.create_endpoint(name="c", flow="sider", webhookUrl=receiver.url)
        for t in ("before", "poison-commit", "after"):
            status, _ = await server.post_message(ep, {"userId": "u", "sessionId": "s", "text": t})
            assert status == 202
        await server.services.run_until_idle(30)
        await receiver.wait_for(5)
        assert hook_texts(receiver, "s") == ["You said: before", "You said: after"]
        assert side_effects(receiver, "poison-commit") == 1
        (failed,) = await messages(server, ep, status="failed")
        assert "storage refused the turn's commit 3 times" in failed["error"]
        async with server.http.get(server.base_url + "/metrics") as resp:
            assert 'flowhook_messages_failed_total{reason="storage_error"} 1.0' in await resp.text()


async def test_a_message_read_back_too_often_is_failed_not_run(
    tmp_path: Path, db_url: str, receiver: Receiver
) -> None:
    """A message whose turn was started from the inbox more often than allowed (the
    process died in it each time) is failed without running; the next one runs."""
    flows = flows_dir(tmp_path, receiver)
    async with running_server(tmp_path, db_url, flows_dir=flows) as server:
        ep = await server.create_endpoint(name="r", flow="sider", webhookUrl=receiver.url)
        # Stop the server's runner: what is accepted now waits for the next server.
        await server.services.runner.stop()
        store = server.services.store
        # As if earlier processes had each died in this message's turn.
        poison = await store.accept_message(
            InboundMessage(ep["id"], "s", "u", "trace-poison", "poison", None, 0.0)
        )
        after = await store.accept_message(
            InboundMessage(ep["id"], "s", "u", "trace-after", "after", None, 0.0)
        )
        for _ in range(2):
            await store.count_attempts([poison])
    async with running_server(tmp_path, db_url, flows_dir=flows, turn_max_attempts=2) as server:
        await server.services.run_until_idle(30)
        await receiver.wait_for(2)
        assert side_effects(receiver, "poison") == 0
        assert hook_texts(receiver, "s") == ["You said: after"]
        status, message = await server.api("GET", f"/api/v1/messages/{poison}")
        assert (status, message["status"]) == (200, "failed")
        assert message["attempts"] == 3
        assert "started 3 times without finishing" in message["error"]
        status, message = await server.api("GET", f"/api/v1/messages/{after}")
        assert (status, message["status"], message["attempts"]) == (200, "done", 1)
