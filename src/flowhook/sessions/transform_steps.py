"""Where an endpoint's transformers run, and what happens when one fails.

Hooks, each a trusted ``module:function`` named in the endpoint's settings:

- input: gets each request's JSON document, returns the Webhook Endpoint's
  ``{userId, sessionId, text, data}``;
- inject, notify: the same for inject and notify requests (default: the input one);
- output: gets each delivered payload ``{userId, sessionId, AIOutput}``, returns the
  JSON to POST;
- execution finished: gets a rest endpoint's whole answer ``{userId, sessionId,
  traceId, outputs}``, returns the JSON to answer with.

A failing transformer (it raises, or returns what is not JSON) is recorded: a log line
``transformer.failed`` (hook, endpoint, exception type; never the message) and the
``flowhook_transformer_errors`` counter. Then, with ``abortOnTransformerError`` off
(the default), the untransformed request, output or answer goes on; with it on, the
request is refused (400), the output is dropped, the rest answer is a 502.

A transformer with a second parameter gets the session storage
(``flowhook.sessions.session_storage``).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

import orjson
import structlog

from flowhook.endpoints.settings import EndpointSettings
from flowhook.errors import InvalidRequest, StorageError, TransformerFailed
from flowhook.sessions.session_storage import SessionStorage
from flowhook.sessions.transformers import Transformers
from flowhook.storage.session_storage import SessionStorageStore

log = structlog.get_logger(__name__)

# Told of every failure: (endpoint_id, hook).
ErrorHook = Callable[[str, str], None]


class TransformSteps:
    def __init__(
        self,
        transformers: Transformers,
        storage: SessionStorageStore,
        on_error: ErrorHook | None = None,
    ) -> None:
        self._transformers = transformers
        self._storage = storage
        self._on_error = on_error
        self._wants_storage: dict[str, bool] = {}

    async def request(
        self, settings: EndpointSettings, kind: str, scoped: bool, body: bytes, endpoint_id: str
    ) -> bytes:
        """The request body to validate: transformed by the hook for its kind."""
        hook, spec = "input", settings.input_transformer
        if kind == "notify" and settings.notify_transformer is not None:
            hook, spec = "notify", settings.notify_transformer
        elif scoped and kind == "message" and settings.inject_transformer is not None:
            hook, spec = "inject", settings.inject_transformer
        if spec is None:
            return body
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest(
                f"request body is not valid JSON: {exc}", expected="a JSON object"
            ) from None
        try:
            return orjson.dumps(await self._call(spec, doc, endpoint_id))
        except StorageError:
            raise
        except Exception as exc:  # trusted, but still user code: never a 500
            self._failed(hook, spec, endpoint_id, exc)
            if settings.abort_on_transformer_error:
                raise InvalidRequest(
                    f"the endpoint's {hook} transformer could not read this request "
                    f"({type(exc).__name__})",
                    expected=f"a request in the format this endpoint's {hook} transformer reads",
                ) from None
            return body

    async def output(
        self, settings: EndpointSettings, payload: bytes, endpoint_id: str
    ) -> bytes | None:
        """The payload to deliver; None: dropped (the transformer failed, abort is on)."""
        spec = settings.output_transformer
        if spec is None:
            return payload
        try:
            return orjson.dumps(await self._call(spec, orjson.loads(payload), endpoint_id))
        except StorageError:
            raise
        except Exception as exc:
            self._failed("output", spec, endpoint_id, exc)
            return None if settings.abort_on_transformer_error else payload

    async def reply(
        self, settings: EndpointSettings, answer: dict[str, Any], endpoint_id: str
    ) -> bytes:
        """A rest endpoint's answer, reshaped by its execution-finished transformer."""
        spec = settings.execution_finished_transformer
        if spec is not None:
            try:
                return orjson.dumps(await self._call(spec, answer, endpoint_id))
            except StorageError:
                raise
            except Exception as exc:
                self._failed("executionFinished", spec, endpoint_id, exc)
                if settings.abort_on_transformer_error:
                    raise TransformerFailed(
                        "the endpoint's execution-finished transformer failed "
                        f"({type(exc).__name__}); the turn itself ran",
                        transformer="executionFinished",
                    ) from None
        return orjson.dumps(answer)

    async def _call(self, spec: str, doc: Any, endpoint_id: str) -> Any:
        function = self._transformers.function(spec)
        if not self._takes_storage(spec, function):
            return function(doc)
        storage = SessionStorage(self._storage, endpoint_id, asyncio.get_running_loop())
        result = await asyncio.to_thread(function, doc, storage)
        await self._storage.save(endpoint_id, storage.changed())
        return result

    def _takes_storage(self, spec: str, function: Callable[..., Any]) -> bool:
        wants = self._wants_storage.get(spec)
        if wants is None:
            try:
                params = list(inspect.signature(function).parameters.values())
            except (TypeError, ValueError):
                params = []
            positional = [
                p
                for p in params
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
            ]
            wants = self._wants_storage[spec] = len(positional) >= 2 or any(
                p.kind == p.VAR_POSITIONAL for p in positional
            )
        return wants

    def _failed(self, hook: str, spec: str, endpoint_id: str, exc: Exception) -> None:
        log.warning(
            "transformer.failed",
            hook=hook,
            transformer=spec,
            endpoint_id=endpoint_id,
            error=type(exc).__name__,
        )
        if self._on_error is not None:
            self._on_error(endpoint_id, hook)
