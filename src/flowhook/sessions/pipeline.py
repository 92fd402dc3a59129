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
from flowhook.nlu.connectors import NluQuery, connector_for
from flowhook.outbound_http import LazySession, OutboundPolicy
from flowhook.sessions.translate_turn import CARRIED_KEYS, TurnTranslation, safe_reason
from flowhook.sessions.translate_turn import USER_LANGUAGE_KEY as USER_LANGUAGE_KEY
from flowhook.storage.records import InboundMessage
from flowhook.translation import TranslationSettings

log = structlog.get_logger(__name__)


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
        self._turn_translation = TurnTranslation(self._environ, self.http_session)

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
                    reason=safe_reason(exc),
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
        if settings.translation is None:
            return outputs
        return await self._turn_translation.outgoing(settings.translation, state_extra, outputs)

    async def for_agent(
        self, settings: EndpointSettings, state_extra: dict[str, Any], msg: InboundMessage
    ) -> dict[str, Any]:
        """The ``text`` and ``data`` of a user's message forwarded to a human agent, in
        the flow's language (the agent's); with ``originalText`` as the user wrote it
        when it was translated."""
        fields: dict[str, Any] = {"text": msg.text, "data": msg.data}
        cfg = settings.translation
        if cfg is None:
            return fields
        turn = TurnInput(msg.user_id, msg.session_id, msg.trace_id, msg.text, msg.data or {})
        shown = await self._turn_translation.incoming(cfg, state_extra, turn, count=False)
        if shown.text != msg.text:
            fields.update(text=shown.text, originalText=msg.text)
        if msg.data is not None and shown.data != msg.data:
            fields["data"] = shown.data
        return fields

    def carry(self, before_extra: dict[str, Any], result: TurnResult) -> TurnResult:
        """Keep the user's language in the new state even when the turn started the
        session afresh (idle timeout, ``reset``): the user still speaks it."""
        for key in CARRIED_KEYS:  # the language, and whether it is kept for good
            value = before_extra.get(key)
            if value is not None and key not in result.state.extra:
                result.state.extra[key] = value
        return result

    async def _translate_in(
        self, cfg: TranslationSettings, state_extra: dict[str, Any], turn: TurnInput
    ) -> TurnInput:
        return await self._turn_translation.incoming(cfg, state_extra, turn, count=True)
