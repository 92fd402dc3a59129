"""Transformers for a Slack-like client: an example of an endpoint speaking another format.

Use on an endpoint (the file sits in the flows dir):
    "inputTransformer": "slack.py:from_slack", "outputTransformer": "slack.py:to_slack"

Trusted code: it runs inside the server with its full rights.
"""

from __future__ import annotations

from typing import Any


def from_slack(request: dict[str, Any]) -> dict[str, Any]:
    """{"event": {"user", "channel", "text", "ts"}} -> the Webhook Endpoint's request."""
    event = request["event"]
    return {
        "userId": event["user"],
        "sessionId": event["channel"],
        "text": event.get("text", ""),
        "data": {"slackTs": event.get("ts")},
    }


def to_slack(payload: dict[str, Any]) -> dict[str, Any]:
    """The delivered payload -> a Slack-like chat.postMessage body."""
    output = payload["AIOutput"]
    return {
        "channel": payload["sessionId"],
        "text": output["text"],
        "metadata": {"event_type": "flowhook_output", "event_payload": output["data"]},
    }
