"""External NLU connectors: an endpoint's ``nluConnector`` setting replaces the flow's
built-in intent matching with a call to an NLU service (a Rasa server, or any JSON API).

A failing call (timeout, non-2xx, bad reply) is logged and the turn falls back to the
built-in matcher, so an NLU outage never stalls a conversation.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from flowhook.nlu.connectors.base import NluConnector, NluQuery
from flowhook.nlu.connectors.config import (
    JsonConnectorSettings,
    NluConnectorSettings,
    RasaConnectorSettings,
)
from flowhook.nlu.connectors.generic import JsonConnector
from flowhook.nlu.connectors.http import ExternalServiceError
from flowhook.nlu.connectors.rasa import RasaConnector


def connector_for(
    settings: RasaConnectorSettings | JsonConnectorSettings,
    environ: Mapping[str, str] | None = None,
) -> NluConnector:
    env = environ if environ is not None else os.environ
    if isinstance(settings, RasaConnectorSettings):
        return RasaConnector(settings, env)
    return JsonConnector(settings, env)


__all__ = [
    "ExternalServiceError",
    "JsonConnector",
    "JsonConnectorSettings",
    "NluConnector",
    "NluConnectorSettings",
    "NluQuery",
    "RasaConnector",
    "RasaConnectorSettings",
    "connector_for",
]
