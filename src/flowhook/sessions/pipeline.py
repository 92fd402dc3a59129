"""What happens to a turn around the flow: NLU connector and translation.

``before`` runs ahead of the flow: the user's text is translated into the flow's
language (when the endpoint has ``translation``), then sent to the endpoint's NLU
connector (when it has ``nluConnector``), whose result replaces the flow's built-in
matching. ``after`` translates the outputs' texts back into the user's language.

Neither step can fail a turn: a provider that times out, answers non-2xx or sends
a reply that makes no sense is logged (never with the message's text, the URL or a
key) and the turn goes on as if the setting were off: untranslated text, built-in
matching. One pooled ``aiohttp.ClientSession`` serves every call; ``aclose`` closes it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import aiohttp
import structlog

from flowhook.endpoints.settings import EndpointSettings
from flowhook.flows.types import Output, TurnInput, TurnResult
from flowhook.nlu.connectors import ExternalServiceError, NluQuery, connector_for
from flowhook.outbound_http import LazySession, OutboundPolicy
from flowhook.translation import TranslationSettings, same_language, translator_for
from flowhook.translation.base import normalise_language

log = structlog.get_logger(__name__)

# Where the session remembers the user's language (SessionState.extra).
USER_LANGUAGE_KEY = "translation.userLanguage"


class TurnPipeline:
    def __init__(
        self,
        *,
        environ: Mapping[str, str] | None = None,
        user_agent: str = "flowhook",
        translation_policy: OutboundPolicy | None = None,
        nlu_policy: OutboundPolicy | None = None,
    ) -> None:
        self._environ: Mapping[str, str] = environ if environ is not None else os.environ
        # Each feature its own guarded pool and allowlist (flowhook.outbound_http).
        self._translation = LazySession(
            user_agent, policy=translation_policy or OutboundPolicy("translation")
        )
        self._nlu = LazySession(user_agent, policy=nlu_policy or OutboundPolicy("nlu connector"))

    def http_session(self) -> aiohttp.ClientSession:
        """The translation providers' session; created on first use, inside the loop."""
        return self._translation.get()

    def nlu_session(self) -> aiohttp.ClientSession:
        """The NLU connectors' session."""
        return self._nlu.get()

    async def aclose(self) -> None:
        await self._translation.aclose()
        await self._nlu.aclose()

    async def before(
        self, settings: EndpointSettings, state_extra: dict[str, Any], turn: TurnInput
    ) -> TurnInput:
        """``turn`` translated into the flow's language and with the connector's NLU
        result; remembers the user's language in ``state_extra``."""
        if settings.translation is not None:
            turn = await self._translate_in(settings.translation, state_extra, turn)
        if settings.nlu_connector is not None and turn.text:
            connector = connector_for(settings.nlu_connector, self._environ)
            query = NluQuery(turn.text, turn.user_id, turn.session_id, turn.locale)
            try:
                result = await connector.parse(self.nlu_session(), query)
            except Exception as exc:  # a provider must never fail the turn
                log.warning(
                    "nlu_connector.failed",
                    connector=settings.nlu_connector.type,
                    reason=_reason(exc),
                    trace_id=turn.trace_id,
                    fallback="built-in",
                )
            else:
                turn = dataclasses.replace(turn, nlu=result)
        return turn

    async def after(
        self, settings: EndpointSettings, state_extra: dict[str, Any], outputs: list[Output]
    ) -> list[Output]:
        """``outputs`` with their texts in the user's language (as remembered)."""
        cfg = settings.translation
        language = state_extra.get(USER_LANGUAGE_KEY)
        if cfg is None or not isinstance(language, str) or same_language(language, cfg.flow_locale):
            return outputs
        texts = [(i, out.text) for i, out in enumerate(outputs) if out.text]
        if not texts:
            return outputs
        try:
            translator = translator_for(cfg, self._environ)
            done = await translator.translate(
                self.http_session(), [text for _, text in texts], language, cfg.flow_locale
            )
            translated = list(outputs)
            for (i, _), result in zip(texts, done, strict=True):
                translated[i] = dataclasses.replace(outputs[i], text=result.text)
        except Exception as exc:  # a provider must never fail the turn
            log.warning(
                "translation.failed", direction="out", provider=cfg.provider, reason=_reason(exc)
            )
            return outputs
        return translated

    def carry(self, before_extra: dict[str, Any], result: TurnResult) -> TurnResult:
        """Keep the user's language in the new state even when the turn started the
        session afresh (idle timeout, ``reset``): the user still speaks it."""
        language = before_extra.get(USER_LANGUAGE_KEY)
        if language is not None and USER_LANGUAGE_KEY not in result.state.extra:
            result.state.extra[USER_LANGUAGE_KEY] = language
        return result

    async def _translate_in(
        self, cfg: TranslationSettings, state_extra: dict[str, Any], turn: TurnInput
    ) -> TurnInput:
        given = _given_language(turn.data, cfg.user_language_data_key)
        if given is not None:
            state_extra[USER_LANGUAGE_KEY] = given
        if not turn.text or (given is not None and same_language(given, cfg.flow_locale)):
            return turn
        try:
            translator = translator_for(cfg, self._environ)
            (result,) = await translator.translate(
                self.http_session(), [turn.text], cfg.flow_locale, given
            )
        except Exception as exc:  # a provider must never fail the turn
            log.warning(
                "translation.failed",
                direction="in",
                provider=cfg.provider,
                reason=_reason(exc),
                trace_id=turn.trace_id,
            )
            return turn
        language = given or result.detected
        if language is None:
            return dataclasses.replace(turn, text=result.text)
        state_extra[USER_LANGUAGE_KEY] = language
        if same_language(language, cfg.flow_locale):
            return turn  # already in the flow's language: the user's words, untouched
        return dataclasses.replace(turn, text=result.text)


def _given_language(data: Mapping[str, Any], key: str | None) -> str | None:
    if key is None:
        return None
    value = data.get(key)
    if isinstance(value, str) and value.strip():
        return normalise_language(value)
    return None


def _reason(exc: Exception) -> str:
    """Safe to log: our own messages, or only the type of anything unexpected (whose
    message might quote the text, a URL or a key)."""
    if isinstance(exc, ExternalServiceError):
        return str(exc)
    return f"unexpected {type(exc).__name__}"
