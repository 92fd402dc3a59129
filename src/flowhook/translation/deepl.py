"""DeepL: ``POST {base}/v2/translate`` (JSON), ``Authorization: DeepL-Auth-Key ...``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from flowhook.nlu.connectors.http import ExternalServiceError, post_json
from flowhook.translation.base import Translation, normalise_language, primary

FREE_API = "https://api-free.deepl.com"
PRO_API = "https://api.deepl.com"
# Targets DeepL wants with a region (the bare codes are deprecated).
_TARGET_REGION = {"EN": "EN-US", "PT": "PT-PT"}


def deepl_target(code: str) -> str:
    upper = normalise_language(code).upper()
    return _TARGET_REGION.get(upper, upper)


class DeepLTranslator:
    name = "deepl"

    def __init__(self, api_key: str, *, base_url: str | None = None, timeout: float) -> None:
        self._key = api_key
        # Free-plan keys end in ":fx" and have their own host.
        default = FREE_API if api_key.endswith(":fx") else PRO_API
        self.base_url = (base_url or default).rstrip("/")
        self.timeout = timeout

    async def translate(
        self,
        http: aiohttp.ClientSession,
        texts: Sequence[str],
        target: str,
        source: str | None = None,
        *,
        glossary_id: str | None = None,
        formality: str | None = None,
    ) -> list[Translation]:
        """``glossary_id`` is sent only with a known ``source`` (DeepL requires one)."""
        body: dict[str, Any] = {"text": list(texts), "target_lang": deepl_target(target)}
        if source:
            body["source_lang"] = primary(source).upper()
            if glossary_id:
                body["glossary_id"] = glossary_id
        if formality:
            body["formality"] = formality
        reply = await post_json(
            http,
            f"{self.base_url}/v2/translate",
            body,
            timeout=self.timeout,
            headers={"Authorization": f"DeepL-Auth-Key {self._key}"},
        )
        items = reply.get("translations") if isinstance(reply, Mapping) else None
        if not isinstance(items, list) or len(items) != len(texts):
            raise ExternalServiceError("reply has no translation for every text")
        out = []
        for item in items:
            text = item.get("text") if isinstance(item, Mapping) else None
            if not isinstance(text, str):
                raise ExternalServiceError("reply has a translation without text")
            detected = item.get("detected_source_language")
            found = normalise_language(detected) if isinstance(detected, str) and detected else None
            out.append(Translation(text, None if source else found))
        return out
