"""Input and output transformers let one endpoint speak a Slack-like client's format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.receiver import Receiver
from tests.support.server import RunningServer, running_server

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SLACK_EVENT = {"event": {"user": "U1", "channel": "C9", "text": "hello", "ts": "171.5"}}


@pytest.fixture
async def slack_server(tmp_path: Path, db_url: str) -> Any:
    async with running_server(tmp_path, db_url, flows_dir=EXAMPLES) as srv:
        yield srv


async def test_slack_like_request_and_payload(
    slack_server: RunningServer, receiver: Receiver
) -> None:
    """A Slack-like event is read by the input transformer, runs the flow, and reaches the
    webhook reshaped by the output transformer."""
    srv = slack_server
    ep = await srv.create_endpoint(
        name="slack",
        flow="echo",
        webhookUrl=receiver.url,
        inputTransformer="slack.py:from_slack",
        outputTransformer="slack.py:to_slack",
    )
    status, _ = await srv.post_message(ep, SLACK_EVENT)
    assert status == 202
    (delivery,) = await receiver.wait_for(1)
    assert delivery.body == {
        "channel": "C9",
        "text": "You said: hello",
        "metadata": {"event_type": "flowhook_output", "event_payload": {"slackTs": "171.5"}},
    }


async def test_transformer_errors_are_clear(
    slack_server: RunningServer, receiver: Receiver
) -> None:
    """With abortOnTransformerError, a request the input transformer cannot read is a 400
    naming the transformer's failure (not a 500); a name that cannot be imported is
    refused at creation."""
    srv = slack_server
    ep = await srv.create_endpoint(
        name="slack",
        flow="echo",
        webhookUrl=receiver.url,
        inputTransformer="slack.py:from_slack",
        abortOnTransformerError=True,
    )
    status, body = await srv.post_message(ep, {"userId": "u", "sessionId": "s", "text": "x"})
    assert status == 400
    assert "input transformer" in body["error"]["message"]
    assert "KeyError" in body["error"]["message"]
    status, body = await srv.api(
        "POST",
        "/api/v1/endpoints",
        {
            "name": "bad",
            "flow": "echo",
            "webhookUrl": receiver.url,
            "outputTransformer": "slack.py:nope",
        },
    )
    assert (status, body["error"]["field"]) == (400, "outputTransformer")


async def test_failing_output_transformer_delivers_the_standard_payload(
    slack_server: RunningServer, receiver: Receiver
) -> None:
    """When the output transformer fails, the output is still delivered, in the standard
    format, rather than lost."""
    srv = slack_server
    ep = await srv.create_endpoint(
        name="slack", flow="echo", webhookUrl=receiver.url, outputTransformer="slack.py:from_slack"
    )
    await srv.post_message(ep, {"userId": "u", "sessionId": "s", "text": "x"})
    (delivery,) = await receiver.wait_for(1)
    assert delivery.body["AIOutput"]["text"] == "You said: x"
