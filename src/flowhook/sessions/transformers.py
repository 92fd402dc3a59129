"""Per-endpoint input and output transformers: a flow author's Python that reshapes the
request a client sends and the payload delivered to its webhook, so one endpoint can
speak another client's format (see docs/endpoints.md, "Transformers").

An input transformer takes the request's JSON document and returns one in the
Webhook Endpoint's format ({userId, sessionId, text, data}); an output transformer
takes the delivered payload ({userId, sessionId, AIOutput}) and returns the JSON
document to POST instead. Both are plain functions in a file of the flows dir
(``file.py:function``; ``module:function`` from sys.path only with the server
setting ``code_allow_modules``). They never run in the server process: each call
goes to a code worker (``flowhook.isolation``) with its timeout and memory limit.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import structlog

from flowhook.errors import InvalidRequest
from flowhook.isolation import CodeWorkers
from flowhook.trusted_code import CodeRef, resolve_code_ref

log = structlog.get_logger(__name__)


class Transformers:
    """Resolves ``file.py:function`` names (files in ``base_dir``, the flows dir) once,
    and runs them in ``workers``."""

    def __init__(
        self,
        base_dir: Path,
        workers: CodeWorkers | None = None,
        *,
        allow_modules: bool = False,
    ) -> None:
        self._base_dir = base_dir
        self._allow_modules = allow_modules
        self.workers = workers or CodeWorkers()
        self._refs: dict[str, CodeRef] = {}

    def check(self, spec: str, field: str) -> None:
        """Raise a 400 naming ``field`` when ``spec`` names no function that may run."""
        try:
            self._ref(spec)
        except ValueError as exc:
            raise InvalidRequest(
                f"{field}: {exc}",
                field=field,
                expected="'file.py:function' naming a function in a file of the flows dir",
            ) from None

    async def transform_input(self, spec: str, body: bytes, endpoint_id: str) -> bytes:
        """The request in the Webhook Endpoint's format; a 400 when the transformer fails."""
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest(
                f"request body is not valid JSON: {exc}", expected="a JSON object"
            ) from None
        try:
            result = await self.workers.run_isolated(self._ref(spec), [doc])
            return orjson.dumps(result)
        except Exception as exc:  # the user's code: never a 500
            raise self._input_failed(spec, endpoint_id, exc) from None

    def transform_output(self, spec: str, payload: bytes, endpoint_id: str) -> bytes:
        """The payload to deliver; the standard one when the transformer fails.

        For synchronous callers: waits for the worker at most the code timeout (the
        code runs in the worker either way). Async callers use ``transform_output_async``.
        """
        try:
            return orjson.dumps(self.workers.run_blocking(self._ref(spec), [orjson.loads(payload)]))
        except Exception as exc:
            return self._output_failed(spec, endpoint_id, exc, payload)

    async def transform_output_async(self, spec: str, payload: bytes, endpoint_id: str) -> bytes:
        """``transform_output`` without blocking the event loop."""
        try:
            result = await self.workers.run_isolated(self._ref(spec), [orjson.loads(payload)])
            return orjson.dumps(result)
        except Exception as exc:
            return self._output_failed(spec, endpoint_id, exc, payload)

    def ref(self, spec: str) -> CodeRef:
        """The resolved name (checked once); raises ``ValueError``."""
        return self._ref(spec)

    def _ref(self, spec: str) -> CodeRef:
        ref = self._refs.get(spec)
        if ref is None:
            ref = resolve_code_ref(spec, self._base_dir, allow_modules=self._allow_modules)
            self._refs[spec] = ref
        return ref

    def _input_failed(self, spec: str, endpoint_id: str, exc: Exception) -> InvalidRequest:
        reason = _reason(exc)
        log.warning(
            "transformer.input_failed", endpoint_id=endpoint_id, transformer=spec, error=reason
        )
        return InvalidRequest(
            f"the endpoint's input transformer could not read this request ({reason})",
            expected="a request in the format this endpoint's input transformer reads",
        )

    def _output_failed(self, spec: str, endpoint_id: str, exc: Exception, payload: bytes) -> bytes:
        log.warning(
            "transformer.output_failed",
            endpoint_id=endpoint_id,
            transformer=spec,
            error=_reason(exc),
        )
        return payload


def failure_reason(exc: Exception) -> str:
    """Why a transformer failed, safe to show and log."""
    return _reason(exc)


def _reason(exc: Exception) -> str:
    """The failure's kind, safe to show: the exception type the code raised, or ours."""
    text = str(exc)
    kind = text.split(":", 1)[0] if ":" in text else type(exc).__name__
    if type(exc).__name__ == "CodeTimeout":
        return "timed out"
    return kind if kind.isidentifier() else type(exc).__name__
