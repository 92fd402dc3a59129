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

A transformer with a second parameter gets the session storage: ``storage.get(userId,
sessionId)`` returns that session's storage, a dict to read and change; changes are
kept when the transformer returns (``flowhook.sessions.storage_call``).
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import structlog

from flowhook.endpoints.settings import EndpointSettings
from flowhook.errors import InvalidRequest, StorageError, TransformerFailed
from flowhook.sessions import storage_call
from flowhook.sessions.transformers import Transformers, failure_reason
from flowhook.storage.session_storage import SessionStorageStore, StorageKey
from flowhook.trusted_code import CodeRef

log = structlog.get_logger(__name__)

# Told of every failure: (endpoint_id, hook).
ErrorHook = Callable[[str, str], None]
# How many sessions' storages one call may use.
MAX_STORAGES = 4
MAX_ID_LENGTH = 1024
# Runs in the code worker around a transformer that takes the session storage.
_STORAGE_CALL = CodeRef("storage_call", "call", path=str(Path(storage_call.__file__).resolve()))


def _storage_key(value: Any) -> StorageKey:
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, str) and 0 < len(v) <= MAX_ID_LENGTH for v in value)
    ):
        return (value[0], value[1])
    raise ValueError("storage.get needs a user id and a session id (non-empty strings)")


def _session_of(doc: Any) -> StorageKey | None:
    """The session a payload or rest answer is about."""
    if isinstance(doc, dict):
        try:
            return _storage_key([doc.get("userId"), doc.get("sessionId")])
        except ValueError:
            return None
    return None


def _positional_parameters(ref: CodeRef) -> int:
    if ref.path is None:
        return 1
    try:
        tree = ast.parse(Path(ref.path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return 1
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == ref.function:
            args = node.args
            return 99 if args.vararg else len(args.posonlyargs) + len(args.args)
    return 1


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
                    f"({failure_reason(exc)})",
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
            doc = orjson.loads(payload)
            result = await self._call(spec, doc, endpoint_id, _session_of(doc))
            return orjson.dumps(result)
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
                result = await self._call(spec, answer, endpoint_id, _session_of(answer))
                return orjson.dumps(result)
            except StorageError:
                raise
            except Exception as exc:
                self._failed("executionFinished", spec, endpoint_id, exc)
                if settings.abort_on_transformer_error:
                    raise TransformerFailed(
                        "the endpoint's execution-finished transformer failed "
                        f"({failure_reason(exc)}); the turn itself ran",
                        transformer="executionFinished",
                    ) from None
        return orjson.dumps(answer)

    async def _call(
        self, spec: str, doc: Any, endpoint_id: str, session: StorageKey | None = None
    ) -> Any:
        """The transformer's result, from a code worker. One that takes the session
        storage gets it, loaded as it asks for it (``storage_call``); ``session``: the
        one it will surely want, loaded up front."""
        ref = self._transformers.ref(spec)
        workers = self._transformers.workers
        if not self._takes_storage(ref):
            return await workers.run_isolated(ref, [doc])
        loaded: dict[StorageKey, dict[str, Any]] = {}
        if session is not None:
            loaded[session] = await self._storage.load(endpoint_id, *session)
        for _ in range(MAX_STORAGES + 1):
            given = [[u, s, data] for (u, s), data in loaded.items()]
            answer = await workers.run_isolated(_STORAGE_CALL, [ref.request(), doc, given])
            need = answer.get("need") if isinstance(answer, dict) else None
            if need is None:
                break
            key = _storage_key(need)
            if key in loaded or len(loaded) >= MAX_STORAGES:
                raise ValueError("the transformer asked for too many session storages")
            loaded[key] = await self._storage.load(endpoint_id, *key)
        else:
            raise ValueError("the transformer asked for too many session storages")
        after = {_storage_key(item[:2]): item[2] for item in answer["storage"]}
        changed = {k: v for k, v in after.items() if v != loaded.get(k) and isinstance(v, dict)}
        await self._storage.save(endpoint_id, changed)
        return answer["result"]

    def _takes_storage(self, ref: CodeRef) -> bool:
        """Whether the function has a second parameter, read from its source (user code
        is never imported in the server); module functions get none."""
        wants = self._wants_storage.get(ref.spec)
        if wants is None:
            wants = self._wants_storage[ref.spec] = _positional_parameters(ref) >= 2
        return wants

    def _failed(self, hook: str, spec: str, endpoint_id: str, exc: Exception) -> None:
        log.warning(
            "transformer.failed",
            hook=hook,
            transformer=spec,
            endpoint_id=endpoint_id,
            error=failure_reason(exc),
        )
        if self._on_error is not None:
            self._on_error(endpoint_id, hook)
