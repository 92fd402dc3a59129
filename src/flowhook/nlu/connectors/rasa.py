"""A Rasa NLU server: ``POST {url}/model/parse`` with ``{"text"}``.

The reply's ``intent.name`` / ``intent.confidence`` become ``input.intent`` /
``input.intentScore``, its ``entities`` (``[{"entity", "value", ...}]``) become
``input.slots``.
"""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp

from flowhook.nlu.connectors.base import NluQuery, result_from, slots_from
from flowhook.nlu.connectors.config import RasaConnectorSettings
from flowhook.nlu.connectors.http import ExternalServiceError, post_json
from flowhook.nlu.matcher import NluResult


class RasaConnector:
    def __init__(self, settings: RasaConnectorSettings, environ: Mapping[str, str]) -> None:
        self.settings = settings
        self._environ = environ

    @property
    def parse_url(self) -> str:
        url = self.settings.url.rstrip("/")
        return url if url.endswith("/model/parse") else url + "/model/parse"

    async def parse(self, http: aiohttp.ClientSession, query: NluQuery) -> NluResult:
        cfg = self.settings
        params = None
        if cfg.api_key_env:
            token = self._environ.get(cfg.api_key_env)
            if not token:
                raise ExternalServiceError(f"environment variable {cfg.api_key_env} is not set")
            params = {"token": token}
        reply = await post_json(
            http, self.parse_url, {"text": query.text}, timeout=cfg.timeout, params=params
        )
        if not isinstance(reply, Mapping):
            raise ExternalServiceError("reply is not a JSON object")
        intent = reply.get("intent")
        name = intent.get("name") if isinstance(intent, Mapping) else None
        score = intent.get("confidence") if isinstance(intent, Mapping) else None
        return result_from(name, score, slots_from(reply.get("entities")), cfg.min_score)
