"""Inject, notify and execution-finished transformers, abortOnTransformerError, and the
session storage transformers share, through the real server and a real receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from flowhook.storage.session_storage import SessionStorageStore
from tests.support.receiver import Receiver
from tests.support.server import RunningServer, running_server

HOOKS = """
def remember_channel(doc, storage):
    kept = storage.get(doc["user"], doc["conv"])
    kept["channel"] = doc["channel"]
    kept["seen"] = kept.get("seen", 0) + 1
    return {"userId": doc["user"], "sessionId": doc["conv"], "text": doc["words"]}

def to_channel(payload, storage):
    kept = storage.get(payload["userId"], payload["sessionId"])
    return {"channel": kept.get("channel"), "seen": kept.get("seen"),
            "text": payload["AIOutput"]["text"]}

def inject_in(doc):
    return {"userId": doc["who"], "sessionId": doc["conv"], "text": "injected " + doc["say"]}

def notify_in(doc):
    return {"userId": doc["who"], "sessionId": doc["conv"], "text": doc["note"].upper()}

def finished(answer):
    return {"conversation": answer["sessionId"],
            "messages": [o["text"] for o in answer["outputs"]]}

def broken(doc):
    raise RuntimeError("this transformer always fails")

def hoard(payload, storage):
    storage.get(payload["userId"], payload["sessionId"])["blob"] = "x" * 1_100_000
    return {"hoarded": True}
"""

USER = {"userId": "u1", "sessionId": "s1"}


@pytest.fixture
async def srv(tmp_path: Path, db_url: str) -> AsyncIterator[RunningServer]:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "hooks.py").write_text(HOOKS)
    async with running_server(tmp_path, db_url, flows_dir=flows) as s:
        yield s


async def scoped(srv: RunningServer, ep: dict[str, Any], kind: str, body: Any) -> int:
    async with srv.http.post(f"{ep['endpointUrl']}/{kind}", json=body, headers=srv.admin) as r:
        return r.status


async def transformer_errors(srv: RunningServer, endpoint_id: str, hook: str) -> float:
    async with srv.http.get(srv.base_url + "/metrics", headers=srv.admin) as resp:
        text = await resp.text()
    wanted = f'flowhook_transformer_errors_total{{endpoint_id="{endpoint_id}",hook="{hook}"}}'
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(wanted)]
    return values[0] if values else 0.0


async def test_transformers_share_the_session_storage(
    srv: RunningServer, receiver: Receiver
) -> None:
    """What the input transformer keeps in a session's storage the output transformer
    reads back (the channel a client named on the way in is used on the way out); it is
    kept per session, across messages, in the database; a storage grown over 1 MiB is
    refused like a failing transformer."""
    ep = await srv.create_endpoint(
        name="st",
        flow="echo",
        webhookUrl=receiver.url,
        inputTransformer="hooks.py:remember_channel",
        outputTransformer="hooks.py:to_channel",
    )
    requests = [
        {"user": "u1", "conv": "s1", "channel": "C7", "words": "hi"},
        {"user": "u1", "conv": "s1", "channel": "C7", "words": "again"},
        {"user": "u1", "conv": "s2", "channel": "C9", "words": "elsewhere"},
    ]
    for count, request in enumerate(requests, 1):
        assert (await srv.post_message(ep, request))[0] == 202
        await receiver.wait_for(count)
    assert receiver.bodies() == [
        {"channel": "C7", "seen": 1, "text": "You said: hi"},
        {"channel": "C7", "seen": 2, "text": "You said: again"},
        {"channel": "C9", "seen": 1, "text": "You said: elsewhere"},
    ]
    stored = await SessionStorageStore(srv.services.store).load(ep["id"], "u1", "s1")
    assert stored == {"channel": "C7", "seen": 2}

    # A storage over 1 MiB is a failing transformer: nothing kept, the standard payload.
    path = f"/api/v1/endpoints/{ep['id']}"
    assert (await srv.api("PATCH", path, {"outputTransformer": "hooks.py:hoard"}))[0] == 200
    assert (await srv.post_message(ep, requests[0]))[0] == 202
    (*_, last) = await receiver.wait_for(4)
    assert last.body["AIOutput"]["text"] == "You said: hi"
    stored = await SessionStorageStore(srv.services.store).load(ep["id"], "u1", "s1")
    assert stored == {"channel": "C7", "seen": 3}


async def test_inject_and_notify_have_their_own_transformers(
    srv: RunningServer, receiver: Receiver
) -> None:
    """An inject request is read by the inject transformer and a notify request by the
    notify transformer (not by the endpoint's input transformer, which reads the
    ordinary messages)."""
    ep = await srv.create_endpoint(
        name="in",
        flow="echo",
        webhookUrl=receiver.url,
        inputTransformer="hooks.py:remember_channel",
        injectTransformer="hooks.py:inject_in",
        notifyTransformer="hooks.py:notify_in",
    )
    assert await scoped(srv, ep, "inject", {"who": "u1", "conv": "s1", "say": "hello"}) == 202
    assert await scoped(srv, ep, "notify", {"who": "u1", "conv": "s1", "note": "shipped"}) == 202
    await receiver.wait_for(2)
    assert [b["AIOutput"]["text"] for b in receiver.bodies()] == [
        "You said: injected hello",
        "SHIPPED",
    ]


async def test_execution_finished_reshapes_a_rest_answer(
    srv: RunningServer, receiver: Receiver
) -> None:
    """A rest endpoint's answer is what its execution-finished transformer makes of the
    whole reply; when that transformer fails the standard answer is given and the error
    counted, or with abortOnTransformerError a 502 naming the transformer."""
    ep = await srv.create_endpoint(
        name="r", flow="echo", type="rest", executionFinishedTransformer="hooks.py:finished"
    )
    status, answer = await srv.post_message(ep, {**USER, "text": "hi"})
    assert (status, answer) == (200, {"conversation": "s1", "messages": ["You said: hi"]})

    path = f"/api/v1/endpoints/{ep['id']}"
    assert (await srv.api("PATCH", path, {"executionFinishedTransformer": "hooks.py:broken"}))[
        0
    ] == 200
    status, answer = await srv.post_message(ep, {**USER, "text": "again"})
    assert status == 200
    assert [o["text"] for o in answer["outputs"]] == ["You said: again"]
    assert await transformer_errors(srv, ep["id"], "executionFinished") == 1

    assert (await srv.api("PATCH", path, {"abortOnTransformerError": True}))[0] == 200
    status, answer = await srv.post_message(ep, {**USER, "text": "third"})
    assert (status, answer["error"]["code"]) == (502, "transformer_failed")
    assert answer["error"]["transformer"] == "executionFinished"


async def test_abort_on_error_off_lets_the_untransformed_message_go_on(
    srv: RunningServer, receiver: Receiver
) -> None:
    """By default a failing input transformer lets the request go on as sent (here it is
    in the standard format) and the error is counted; a failing output transformer
    delivers the standard payload. With abortOnTransformerError on, the request is
    refused with 400 and a failing output transformer's output is not delivered."""
    ep = await srv.create_endpoint(
        name="lenient",
        flow="echo",
        webhookUrl=receiver.url,
        inputTransformer="hooks.py:broken",
        outputTransformer="hooks.py:broken",
    )
    assert ep["abortOnTransformerError"] is False
    assert (await srv.post_message(ep, {**USER, "text": "as sent"}))[0] == 202
    (delivery,) = await receiver.wait_for(1)
    assert delivery.body["AIOutput"]["text"] == "You said: as sent"
    assert await transformer_errors(srv, ep["id"], "input") == 1
    assert await transformer_errors(srv, ep["id"], "output") == 1

    strict = await srv.create_endpoint(
        name="strict",
        flow="echo",
        webhookUrl=receiver.url,
        outputTransformer="hooks.py:broken",
        abortOnTransformerError=True,
    )
    assert (await srv.post_message(strict, {**USER, "text": "dropped"}))[0] == 202
    await srv.services.run_until_idle()
    assert await transformer_errors(srv, strict["id"], "output") == 1
    path = f"/api/v1/endpoints/{strict['id']}"
    assert (await srv.api("PATCH", path, {"inputTransformer": "hooks.py:broken"}))[0] == 200
    status, body = await srv.post_message(strict, {**USER, "text": "refused"})
    assert status == 400
    assert "input transformer" in body["error"]["message"]
    assert [b["AIOutput"]["text"] for b in receiver.bodies()] == ["You said: as sent"]
