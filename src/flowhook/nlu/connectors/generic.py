"""Any JSON NLU API: a configurable request body, the result read at dotted paths.

Strings in ``body`` may hold ``${text}``, ``${userId}``, ``${sessionId}`` and
``${locale}``; a string that is exactly one placeholder is replaced by the value,
others by substitution. Unknown placeholders stay as written.
"""

from __future__ import annotations

from collections.abc import Mapping
from string import Template
from typing import Any

import aiohttp

from flowhook.nlu.connectors.base import NluQuery, result_from, slots_from
from flowhook.nlu.connectors.config import JsonConnectorSettings
from flowhook.nlu.connectors.http import ExternalServiceError, at_path, post_json
from flowhook.nlu.matcher import NluResult


def fill(template: Any, variables: Mapping[str, str]) -> Any:
    """``template`` (any JSON value) with placeholders in its strings substituted."""
    if isinstance(template, str):
        return Template(template).safe_substitute(variables)
    if isinstance(template, Mapping):
        return {key: fill(value, variables) for key, value in template.items()}
    if isinstance(template, list):
        return [fill(value, variables) for value in template]
    return template


class JsonConnector:
    def __init__(self, settings: JsonConnectorSettings, environ: Mapping[str, str]) -> None:
        self.settings = settings
        self._environ = environ

    async def parse(self, http: aiohttp.ClientSession, query: NluQuery) -> NluResult:
        cfg = self.settings
        headers = None
        if cfg.api_key_env:
            token = self._environ.get(cfg.api_key_env)
            if not token:
                raise ExternalServiceError(f"environment variable {cfg.api_key_env} is not set")
            headers = {"Authorization": f"Bearer {token}"}
        body = fill(cfg.body, query.variables())
        reply = await post_json(http, cfg.url, body, timeout=cfg.timeout, headers=headers)
        if not isinstance(reply, Mapping | list):
            raise ExternalServiceError("reply is not a JSON object or array")
        intent = at_path(reply, cfg.intent_path)
        score = at_path(reply, cfg.score_path) if cfg.score_path else None
        slots = slots_from(at_path(reply, cfg.slots_path)) if cfg.slots_path else {}
        return result_from(intent, score, slots, cfg.min_score)
