"""The code node of the code-echo bench flow: the echo flow's answer."""

from typing import Any


def reply(input: dict[str, Any], context: dict[str, Any], profile: dict[str, Any]) -> Any:
    return {"outputs": [{"text": f"You said: {input['text']}", "data": input["data"]}]}
