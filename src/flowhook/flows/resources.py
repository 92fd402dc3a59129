"""What I/O nodes share, owned by the engine: one HTTP client session and their defaults.

The ``aiohttp.ClientSession`` is created on first use (inside the running event
loop) and pooled across every ``http`` and ``llm`` call of every turn; the
engine's ``aclose()`` closes it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp

from flowhook.isolation import CodeWorkers
from flowhook.outbound_http import LazySession, OutboundPolicy

DEFAULT_HTTP_TIMEOUT = 10.0
DEFAULT_LLM_TIMEOUT = 30.0
DEFAULT_LLM_API_KEY_ENV = "OPENAI_API_KEY"
DEFAULT_LLM_HISTORY = 10
# Responses bigger than this fail the call (an API answer, not a download).
MAX_RESPONSE_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class LlmDefaults:
    """Defaults for ``llm`` nodes; each node may override them.

    ``base_url`` is an OpenAI-compatible API root (``https://api.openai.com/v1``,
    ``http://localhost:11434/v1``); requests go to ``{base_url}/chat/completions``.
    ``api_key_env`` names the environment variable holding the API key (none set:
    no ``Authorization`` header, as local servers expect).
    """

    base_url: str | None = None
    model: str | None = None
    api_key_env: str = DEFAULT_LLM_API_KEY_ENV
    timeout: float = DEFAULT_LLM_TIMEOUT


class EngineResources:
    """The shared HTTP session plus defaults for ``http`` and ``llm`` nodes."""

    def __init__(
        self,
        *,
        http_timeout: float = DEFAULT_HTTP_TIMEOUT,
        llm: LlmDefaults | None = None,
        environ: Mapping[str, str] | None = None,
        user_agent: str = "flowhook",
        code_workers: CodeWorkers | None = None,
        http_policy: OutboundPolicy | None = None,
        llm_policy: OutboundPolicy | None = None,
    ) -> None:
        self.http_timeout = http_timeout
        self.llm = llm or LlmDefaults()
        self.environ: Mapping[str, str] = environ if environ is not None else os.environ
        # Owned by whoever passed it in (the server shares one with transformers).
        self._owns_workers = code_workers is None
        self.code_workers = code_workers or CodeWorkers()
        # Every http and llm call goes through the outbound policy (SSRF guard).
        self._http = LazySession(user_agent, policy=http_policy)
        self._llm = LazySession(user_agent, policy=llm_policy)

    def http_session(self) -> aiohttp.ClientSession:
        """The shared session; created on first use, inside the running loop."""
        return self._http.get()

    def llm_session(self) -> aiohttp.ClientSession:
        """The session of ``llm`` calls (its own allowlist: a local model server)."""
        return self._llm.get()

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._llm.aclose()
        if self._owns_workers:
            self.code_workers.close()
