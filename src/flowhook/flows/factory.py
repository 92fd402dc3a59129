"""Building an ``Engine`` from flowhook's settings (used by the server and the CLI)."""

from __future__ import annotations

from typing import Any

from flowhook.flows.engine import Engine
from flowhook.flows.registry import FlowRegistry
from flowhook.flows.resources import EngineResources, LlmDefaults
from flowhook.isolation import CodeWorkers
from flowhook.outbound_http import OutboundPolicy


def engine_from_settings(
    registry: FlowRegistry, settings: Any, code_workers: CodeWorkers | None = None
) -> Engine:
    """An engine configured from a ``Settings`` object (missing settings: defaults).

    Reads ``flow_session_timeout``, ``flow_http_timeout``, ``flow_config``,
    ``llm_base_url``, ``llm_model``, ``llm_api_key_env`` and ``llm_timeout``.
    """

    def get(name: str, default: Any) -> Any:
        value = getattr(settings, name, None)
        return default if value is None else value

    defaults = LlmDefaults()
    resources = EngineResources(
        http_timeout=float(get("flow_http_timeout", 10.0)),
        llm=LlmDefaults(
            base_url=get("llm_base_url", None),
            model=get("llm_model", None),
            api_key_env=get("llm_api_key_env", defaults.api_key_env),
            timeout=float(get("llm_timeout", defaults.timeout)),
        ),
        code_workers=code_workers,
        http_policy=OutboundPolicy.from_settings("http node", settings),
        llm_policy=OutboundPolicy.from_settings("llm node", settings),
    )
    return Engine(
        registry,
        session_timeout=float(get("flow_session_timeout", 1800.0)),
        config=dict(get("flow_config", {})),
        resources=resources,
    )
