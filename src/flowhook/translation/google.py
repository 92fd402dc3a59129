"""Google Cloud Translation v2: ``POST {base}/language/translate/v2?key=...`` (JSON)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from flowhook.nlu.connectors.http import ExternalServiceError, at_path, post_json
from flowhook.translation.base import Translation, normalise_language

GOOGLE_API = "https://translation.googleapis.com"


class GoogleTranslator:
    name = "google"

    def __init__(self, api_key: str, *, base_url: str | None = None, timeout: float) -> None:
        self._key = api_key
        self.base_url = (base_url or GOOGLE_API).rstrip("/")
        self.timeout = timeout

    async def translate(
        self,
        http: aiohttp.ClientSession,
        texts: Sequence[str],
        target: str,
        source: str | None = None,
    ) -> list[Translation]:
        body: dict[str, Any] = {"q": list(texts), "target": normalise_language(target)}
        body["format"] = "text"
        if source:
            body["source"] = normalise_language(source)
        reply = await post_json(
            http,
            f"{self.base_url}/language/translate/v2",
            body,
            timeout=self.timeout,
            params={"key": self._key},
        )
        items = at_path(reply, "data.translations")
        if not isinstance(items, list) or len(items) != len(texts):
            raise ExternalServiceError("reply has no translation for every text")
        out = []
        for item in items:
            text = item.get("translatedText") if isinstance(item, Mapping) else None
            if not isinstance(text, str):
                raise ExternalServiceError("reply has a translation without translatedText")
            detected = item.get("detectedSourceLanguage")
            found = normalise_language(detected) if isinstance(detected, str) and detected else None
            out.append(Translation(text, None if source else found))
        return out
