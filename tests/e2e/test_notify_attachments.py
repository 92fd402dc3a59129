"""Notify with attachments, and the shape of a data-only output, through the real server
and a real receiver."""

from __future__ import annotations

from typing import Any

from tests.support.receiver import Receiver
from tests.support.server import RunningServer

USER = {"userId": "u1", "sessionId": "s1"}
INVOICE = {
    "name": "invoice-0042.pdf",
    "url": "https://files.example.com/invoice-0042.pdf",
    "type": "file",
    "caption": "Your invoice",
}
PHOTO = {"url": "https://files.example.com/parcel.jpg", "type": "image"}


async def notify(server: RunningServer, ep: dict[str, Any], body: Any) -> tuple[int, Any]:
    async with server.http.post(
        ep["endpointUrl"] + "/notify", json=body, headers=server.admin
    ) as resp:
        return resp.status, await resp.json()


async def test_attachments_arrive_in_the_outputs_data(
    server: RunningServer, receiver: Receiver
) -> None:
    """A notify's attachments reach the webhook in AIOutput.data.attachments, beside its
    own data; a notify with attachments only is accepted and its output's text is "",
    a string as the reference types it, never null."""
    ep = await server.create_endpoint(name="n", flow="echo", webhookUrl=receiver.url)
    status, _ = await notify(
        server,
        ep,
        {**USER, "text": "Your documents", "data": {"order": 42}, "attachments": [INVOICE, PHOTO]},
    )
    assert status == 202
    assert (await notify(server, ep, {**USER, "attachments": [PHOTO]}))[0] == 202
    first, second = await receiver.wait_for(2)
    assert first.body["AIOutput"]["text"] == "Your documents"
    assert first.body["AIOutput"]["data"] == {"order": 42, "attachments": [INVOICE, PHOTO]}
    assert second.body["AIOutput"]["text"] == ""
    assert second.body["AIOutput"]["data"] == {"attachments": [PHOTO]}


async def test_bad_attachments_are_refused_naming_the_item(
    server: RunningServer, receiver: Receiver
) -> None:
    """Every malformed attachment is a 400 naming the item and field, and nothing is
    delivered."""
    ep = await server.create_endpoint(name="n", flow="echo", webhookUrl=receiver.url)
    cases: list[tuple[Any, str]] = [
        ("not a list", "attachments"),
        ([PHOTO, "x"], "attachments[1]"),
        ([{"name": "a"}], "attachments[0].url"),
        ([{"url": "javascript:alert(1)"}], "attachments[0].url"),
        ([{"url": "http://[::1"}], "attachments[0].url"),
        ([{**PHOTO, "caption": 7}], "attachments[0].caption"),
        ([{**PHOTO, "size": 7}], "attachments[0].size"),
        ([PHOTO] * 21, "attachments"),
    ]
    for attachments, field in cases:
        status, body = await notify(server, ep, {**USER, "text": "t", "attachments": attachments})
        assert (status, body["error"]["field"]) == (400, field), attachments
        assert body["error"]["expected"]
    assert receiver.deliveries == []


async def test_data_only_outputs_carry_an_empty_text(
    server: RunningServer, receiver: Receiver
) -> None:
    """A flow's data-only output is delivered with AIOutput.text "" on a webhook endpoint
    and returned with text "" by a rest endpoint."""
    hook = await server.create_endpoint(name="w", flow="echo", webhookUrl=receiver.url)
    rest = await server.create_endpoint(name="r", flow="echo", type="rest")
    assert (await server.post_message(hook, {**USER, "data": {"button": "yes"}}))[0] == 202
    (delivery,) = await receiver.wait_for(1)
    assert delivery.body["AIOutput"]["text"] == ""
    assert delivery.body["AIOutput"]["data"] == {"button": "yes"}
    status, answer = await server.post_message(rest, {**USER, "data": {"button": "no"}})
    assert status == 200
    assert [(o["text"], o["data"]) for o in answer["outputs"]] == [("", {"button": "no"})]
