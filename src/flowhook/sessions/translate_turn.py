"""Real-time translation of one turn: the user's message into the flow's language, the
outputs back into the user's, and a user's message forwarded to a human agent.

What decides the user's language, first match wins: the message's
``data[userLanguageDataKey]``; the fixed ``userLanguage``; the language kept since
execution ``setLanguageOnExecution``; else what the provider detects. It is
remembered in the session for outputs and later turns.

No-translation markers (``no_translate``) keep marked text as written; they are
removed from every text that is translated, and from texts that are not (translation
disabled, the user writes the flow's language, the provider failed) only with
``alwaysRemoveMarkers``. With ``translateData`` the string values of data are
translated in the same call (never URLs or strings without letters).

A provider that fails never fails the turn: one log line (direction, provider and a
reason safe to log, never the text) and the text passes untranslated.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import orjson
import structlog

from flowhook.flows.types import Output, TurnInput
from flowhook.nlu.connectors import ExternalServiceError
from flowhook.sessions.no_translate import core, split, strip_markers
from flowhook.translation import TranslationSettings, same_language, translator_for
from flowhook.translation.base import normalise_language
from flowhook.translation.deepl import DeepLTranslator

log = structlog.get_logger(__name__)

# Where the session remembers the user's language (SessionState.extra) and how many of
# its messages were translated (for setLanguageOnExecution).
USER_LANGUAGE_KEY = "translation.userLanguage"
EXECUTIONS_KEY = "translation.executions"
LOCKED_KEY = "translation.languageLocked"
# What outlives a session's reset or idle timeout: the user still speaks the language.
CARRIED_KEYS = (USER_LANGUAGE_KEY, EXECUTIONS_KEY, LOCKED_KEY)
MAX_DATA_STRINGS = 100
MAX_DATA_STRING_LENGTH = 5000


class TurnTranslation:
    def __init__(
        self, environ: Mapping[str, str], http: Callable[[], aiohttp.ClientSession]
    ) -> None:
        self._environ = environ
        self._http = http

    async def incoming(
        self, cfg: TranslationSettings, extra: dict[str, Any], turn: TurnInput, *, count: bool
    ) -> TurnInput:
        """``turn`` in the flow's language; ``count``: a message of the flow's (not one
        forwarded to an agent), counted for setLanguageOnExecution."""
        unchanged = _stripped(turn, cfg) if cfg.always_remove_markers else turn
        if not cfg.enabled:
            return unchanged
        given = _given_language(turn.data, cfg.user_language_data_key)
        fixed = normalise_language(cfg.user_language) if cfg.user_language else None
        kept = extra.get(USER_LANGUAGE_KEY) if extra.get(LOCKED_KEY) else None
        source = given or fixed or (kept if isinstance(kept, str) else None)
        if source is not None:
            extra[USER_LANGUAGE_KEY] = source
        data_refs = _data_strings(turn.data) if cfg.translate_data else ({}, [])
        texts = ([turn.text] if turn.text else []) + [c[k] for c, k in data_refs[1]]
        if not texts or (source is not None and same_language(source, cfg.flow_locale)):
            return unchanged
        executions = int(extra.get(EXECUTIONS_KEY) or 0) + (1 if count and turn.text else 0)
        extra[EXECUTIONS_KEY] = executions
        done = await self._translate(
            cfg, texts, cfg.flow_locale, source, "in", glossary=cfg.deepl_glossary_input
        )
        if done is None:
            return unchanged
        translated, detected = done
        language = source or detected
        if language is not None and source is None:
            extra[USER_LANGUAGE_KEY] = language
            limit = cfg.set_language_on_execution
            if limit is not None and executions >= limit:
                extra[LOCKED_KEY] = True
        if language is not None and same_language(language, cfg.flow_locale):
            return unchanged  # already the flow's language: the user's words, untouched
        text = turn.text
        if turn.text:
            text, translated = translated[0], translated[1:]
        data = _filled(data_refs, translated) if data_refs[1] else turn.data
        return dataclasses.replace(turn, text=text, data=data)

    async def outgoing(
        self, cfg: TranslationSettings, extra: dict[str, Any], outputs: list[Output]
    ) -> list[Output]:
        """``outputs`` with their texts (and with translateData their data) in the user's
        language as remembered."""
        language = extra.get(USER_LANGUAGE_KEY)
        unchanged = (
            [_stripped_output(o, cfg) for o in outputs] if cfg.always_remove_markers else outputs
        )
        if (
            not cfg.enabled
            or not isinstance(language, str)
            or same_language(language, cfg.flow_locale)
        ):
            return unchanged
        plan: list[tuple[int, Any]] = []  # (output index, data refs or None for its text)
        texts: list[str] = []
        for i, out in enumerate(outputs):
            if out.text:
                plan.append((i, None))
                texts.append(out.text)
            if cfg.translate_data and out.data:
                refs = _data_strings(out.data)
                if refs[1]:
                    plan.append((i, refs))
                    texts.extend(c[k] for c, k in refs[1])
        if not texts:
            return unchanged
        done = await self._translate(
            cfg,
            texts,
            language,
            cfg.flow_locale,
            "out",
            glossary=cfg.deepl_glossary_output,
            formality=cfg.deepl_formality,
        )
        if done is None:
            return unchanged
        translated = done[0]
        result = list(outputs)
        for i, refs in plan:
            if refs is None:
                result[i] = dataclasses.replace(result[i], text=translated.pop(0))
            else:
                count = len(refs[1])
                result[i] = dataclasses.replace(result[i], data=_filled(refs, translated[:count]))
                del translated[:count]
        return result

    async def _translate(
        self,
        cfg: TranslationSettings,
        texts: list[str],
        target: str,
        source: str | None,
        direction: str,
        *,
        glossary: str | None = None,
        formality: str | None = None,
    ) -> tuple[list[str], str | None] | None:
        """The texts translated (markers kept as written and removed) and the language
        the provider detected; None when the provider failed."""
        marker = cfg.no_translation_marker
        words: list[str] = []
        plans: list[list[tuple[str, int | str, str]]] = []
        for text in texts:
            plan: list[tuple[str, int | str, str]] = []
            for piece in split(text, marker):
                lead, middle, trail = core(piece.text)
                if piece.translate and middle:
                    plan.append((lead, len(words), trail))
                    words.append(middle)
                else:
                    plan.append(("", piece.text, ""))
            plans.append(plan)
        if not words:
            return [strip_markers(t, marker) for t in texts], None
        try:
            translator = translator_for(cfg, self._environ)
            if isinstance(translator, DeepLTranslator):
                results = await translator.translate(
                    self._http(), words, target, source, glossary_id=glossary, formality=formality
                )
            else:
                results = await translator.translate(self._http(), words, target, source)
        except Exception as exc:  # a provider must never fail the turn
            log.warning(
                "translation.failed",
                direction=direction,
                provider=cfg.provider,
                reason=safe_reason(exc),
            )
            return None
        detected = next((r.detected for r in results if r.detected), None)
        out = [
            "".join(
                f"{lead}{results[part].text}{trail}" if isinstance(part, int) else part
                for lead, part, trail in plan
            )
            for plan in plans
        ]
        return out, detected


def _stripped(turn: TurnInput, cfg: TranslationSettings) -> TurnInput:
    if not turn.text:
        return turn
    return dataclasses.replace(turn, text=strip_markers(turn.text, cfg.no_translation_marker))


def _stripped_output(out: Output, cfg: TranslationSettings) -> Output:
    if not out.text:
        return out
    return dataclasses.replace(out, text=strip_markers(out.text, cfg.no_translation_marker))


DataRefs = tuple[Any, list[tuple[Any, Any]]]


def _data_strings(data: Mapping[str, Any]) -> DataRefs:
    """A copy of ``data`` and where its translatable strings are in it (at most
    MAX_DATA_STRINGS; URLs and strings without letters are left alone)."""
    root = orjson.loads(orjson.dumps(data))  # a deep copy that deep nesting cannot overflow
    refs: list[tuple[Any, Any]] = []
    stack: list[Any] = [root]
    while stack and len(refs) < MAX_DATA_STRINGS:
        node = stack.pop()
        items = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        for key, value in items:
            if isinstance(value, dict | list):
                stack.append(value)
            elif (
                isinstance(value, str)
                and len(value) <= MAX_DATA_STRING_LENGTH
                and "://" not in value
                and any(ch.isalpha() for ch in value)
                and len(refs) < MAX_DATA_STRINGS
            ):
                refs.append((node, key))
    return root, refs


def _filled(refs: DataRefs, texts: list[str]) -> dict[str, Any]:
    root, places = refs
    for (container, key), text in zip(places, texts, strict=True):
        container[key] = text
    result: dict[str, Any] = root
    return result


def _given_language(data: Mapping[str, Any], key: str | None) -> str | None:
    if key is None:
        return None
    value = data.get(key)
    if isinstance(value, str) and value.strip():
        return normalise_language(value)
    return None


def safe_reason(exc: Exception) -> str:
    """Safe to log: our own messages, or only the type of anything unexpected (whose
    message might quote the text, a URL or a key)."""
    if isinstance(exc, ExternalServiceError):
        return str(exc)
    return f"unexpected {type(exc).__name__}"
