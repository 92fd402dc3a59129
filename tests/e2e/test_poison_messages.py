"""Poison input never strands a session: every 202 reaches a final state, in order.

Poison messages (nesting at and around the JSON writer's limits, huge strings, control
characters, numbers JSON cannot hold, a flow that fails) are sent interleaved with
normal ones into the same sessions, on SQLite and PostgreSQL, with the server
restarted half-way while turns are still pending.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from flowhook.storage.message_log import MessageLog
from tests.support.receiver import Receiver
from tests.support.server import RunningServer, running_server

FLOW = """
name: poison
start: check
nodes:
  check:
    type: if
    condition: "input.text == 'boom'"
    then: boom
    else: deep_check
  deep_check:
    type: if
    condition: "input.text == 'deep-output'"
    then: deep
    else: echo
  deep:
    type: code
    function: "deep.py:too_deep"
  boom:
    type: say
    text: "{{ 1 / 0 }}"
  echo:
    type: say
    text: "You said: {{ input.text }}"
"""
DEEP_CODE = """
def too_deep(input, context, profile):
    value = []
    for _ in range(400):
        value = [value]
    return {"outputs": [{"text": "deep", "data": {"x": value}}]}
"""
SESSIONS = ["s-a", "s-b", "s-c"]


def nested(depth: int) -> Any:
    """A value whose innermost list sits ``depth`` levels below it."""
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


def raw_nested_data(levels: int) -> bytes:
    """A body whose ``data`` nests ``levels`` levels below the body (written by hand:
    no JSON library writes the deepest of these)."""
    inner = b"[" * (levels - 1) + b"]" * (levels - 1)
    return b'{"userId":"u","sessionId":"%s","text":"deep","data":{"x":' + inner + b"}}"


def poisons() -> list[bytes]:
    """Bodies a hostile client sends; ``%s`` is the session id."""
    out = [raw_nested_data(n) for n in (62, 63, 64, 65, 100, 252, 253, 254, 255, 300, 1023)]
    out += [raw_nested_data(1024), raw_nested_data(1030)]
    out += [
        b'{"userId":"u","sessionId":"%s","text":"' + b"x" * 200_000 + b'"}',
        b'{"userId":"u","sessionId":"%s","text":"t\\u0007\\u001b[31m\\r\\n"}',
        b'{"userId":"u\\u001b[2J","sessionId":"%s","text":"t"}',
        b'{"userId":"u","sessionId":"%s","text":"n","data":{"v":NaN}}',
        b'{"userId":"u","sessionId":"%s","text":"n","data":{"v":-Infinity}}',
        b'{"userId":"u","sessionId":"%s","text":"n","data":{"v":1e400}}',
        b'{"userId":"u","sessionId":"%s","text":"n","data":{"v":18446744073709551616}}',
        b'{"userId":"u","sessionId":"%s","text":"n","data":{"v":-9223372036854775809}}',
        b'{"userId":"u","sessionId":"%s","text":"n","data":{"v":"\\u0000"}}',
        b'{"userId":"u","sessionId":"%s","text":"boom"}',
        b'{"userId":"u","sessionId":"%s","text":"deep-output"}',
        b'{"userId":"' + b"u" * 5000 + b'","sessionId":"%s","text":"t"}',
    ]
    return out


async def send(server: RunningServer, ep: dict[str, Any], raw: bytes) -> tuple[int, Any]:
    url = f"{server.base_url}/endpoint/{ep['urlToken']}"  # this server's port
    async with server.http.post(url, data=raw) as resp:
        return resp.status, await resp.json(content_type=None)


async def send_round(
    server: RunningServer, ep: dict[str, Any], first: int, last: int, accepted: list[str]
) -> None:
    """Normal messages first..last-1 into every session, each followed by poison."""
    bad = poisons()
    for i in range(first, last):
        for session in SESSIONS:
            body = {"userId": "u", "sessionId": session, "text": f"n-{i}"}
            status, answer = await send(server, ep, json.dumps(body).encode())
            assert status == 202, answer
            accepted.append(answer["traceId"])
            poison = bad[(i * len(SESSIONS) + SESSIONS.index(session)) % len(bad)]
            status, answer = await send(server, ep, poison.replace(b"%s", session.encode()))
            assert status in (202, 400), (status, answer, poison[:120])
            if status == 400:
                assert answer["error"]["field"], answer  # names the field
            else:
                accepted.append(answer["traceId"])


async def test_poison_interleaved_with_normal_messages_survives_a_restart(
    tmp_path: Path, db_url: str, receiver: Receiver
) -> None:
    """Every accepted message ends done or failed, normal ones are delivered once each and
    in order per session, nothing answers 5xx, and a restart half-way changes nothing."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "poison.yaml").write_text(FLOW)
    (flows / "deep.py").write_text(DEEP_CODE)
    accepted: list[str] = []
    rounds = len(poisons()) // len(SESSIONS) + 2
    async with running_server(tmp_path, db_url, flows_dir=flows) as server:
        ep = await server.create_endpoint(name="p", flow="poison", webhookUrl=receiver.url)
        await send_round(server, ep, 0, rounds, accepted)
        # Stopped with turns still pending: the next server must take them up.
    async with running_server(tmp_path, db_url, flows_dir=flows) as server:
        await send_round(server, ep, rounds, 2 * rounds, accepted)
        await server.services.run_until_idle(60)
        log = MessageLog(server.services.store)
        records = await log.page(
            ep["id"], status=None, session_id=None, before_id=None, limit=10_000
        )
        by_trace = {r.trace_id: r for r in records}
        assert set(by_trace) == set(accepted)
        assert {r.status for r in records} <= {"done", "failed"}
        failed = [r for r in records if r.status == "failed"]
        reasons = " ".join(r.error or "" for r in failed)
        assert "ZeroDivisionError" in reasons  # 'boom'
        assert "ecursion" in reasons or "deep" in reasons, reasons  # 'deep-output'
        for r in failed:
            assert r.error is not None
            assert f"message {r.id} (traceId {r.trace_id})" in r.error
        await asyncio.sleep(0.2)
        for session in SESSIONS:
            texts = [
                b["AIOutput"]["text"]
                for b in receiver.bodies()
                if b["sessionId"] == session and b["AIOutput"]["text"].startswith("You said: n-")
            ]
            assert texts == [f"You said: n-{i}" for i in range(2 * rounds)], session


async def test_nesting_at_the_limit_is_accepted_and_written_back(
    server: RunningServer, receiver: Receiver
) -> None:
    """Data nested up to the limit is accepted and delivered intact; one level more is a
    400 naming ``data``."""
    ep = await server.create_endpoint(name="deep", flow="echo", webhookUrl=receiver.url)
    limit = server.services.settings.max_json_depth
    ok = {"userId": "u", "sessionId": "s", "text": "deep", "data": {"x": nested(limit - 2)}}
    status, answer = await server.post_message(ep, ok)
    assert status == 202, answer
    too_deep = {"userId": "u", "sessionId": "s", "text": "deep", "data": {"x": nested(limit - 1)}}
    status, answer = await server.post_message(ep, too_deep)
    assert status == 400
    assert answer["error"]["field"] == "data"
    assert str(limit) in answer["error"]["expected"]
    (delivery,) = await receiver.wait_for(1)
    assert delivery.body["AIOutput"]["data"] == ok["data"]
