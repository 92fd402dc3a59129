"""Any OpenAI-compatible chat model: ``POST {base}/chat/completions``.

With a known source language the model is asked for the translation only. Without
one it is asked for ``{"source": "<code>", "text": "<translation>"}``; a reply that
is not that JSON is taken as the translation, with the language unknown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
import orjson

from flowhook.nlu.connectors.http import ExternalServiceError, at_path, post_json
from flowhook.translation.base import Translation, normalise_language

OPENAI_API = "https://api.openai.com/v1"

KNOWN_SOURCE_PROMPT = (
    "You are a translation engine. Translate the user's message from {source} into "
    "{target}. Reply with the translation only: no quotes, notes or explanations. "
    "Keep placeholders, URLs, numbers and line breaks as they are."
)
DETECT_PROMPT = (
    "You are a translation engine. Translate the user's message into {target}. Reply "
    'with one JSON object only: {{"source": "<ISO 639-1 code of the message\'s '
    'language>", "text": "<the translation>"}}. No notes or explanations.'
)


def _parse_detected(content: str) -> Translation:
    stripped = content.strip()
    if stripped.startswith("```"):
        stripped = stripped.strip("`").removeprefix("json").strip()
    try:
        found = orjson.loads(stripped)
    except orjson.JSONDecodeError:
        return Translation(content.strip())
    if isinstance(found, Mapping) and isinstance(found.get("text"), str):
        source = found.get("source")
        language = normalise_language(source) if isinstance(source, str) and source else None
        return Translation(found["text"], language)
    return Translation(content.strip())


class OpenAiTranslator:
    name = "openai"

    def __init__(
        self, api_key: str | None, *, model: str, base_url: str | None = None, timeout: float
    ) -> None:
        self._key = api_key
        self.model = model
        self.base_url = (base_url or OPENAI_API).rstrip("/")
        self.timeout = timeout

    async def translate(
        self,
        http: aiohttp.ClientSession,
        texts: Sequence[str],
        target: str,
        source: str | None = None,
    ) -> list[Translation]:
        return list(await asyncio.gather(*(self._one(http, t, target, source) for t in texts)))

    async def _one(
        self, http: aiohttp.ClientSession, text: str, target: str, source: str | None
    ) -> Translation:
        if source:
            system = KNOWN_SOURCE_PROMPT.format(source=source, target=target)
        else:
            system = DETECT_PROMPT.format(target=target)
        body: dict[str, Any] = {
            "model": self.model,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": text},
            ],
        }
        headers = {"Authorization": f"Bearer {self._key}"} if self._key else None
        reply = await post_json(
            http, f"{self.base_url}/chat/completions", body, timeout=self.timeout, headers=headers
        )
        content = at_path(reply, "choices.0.message.content")
        if not isinstance(content, str) or not content.strip():
            raise ExternalServiceError("reply has no choices[0].message.content")
        if source:
            return Translation(content.strip())
        return _parse_detected(content)
