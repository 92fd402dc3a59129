"""Per-endpoint input and output transformers: trusted Python that reshapes the request
a client sends and the payload delivered to its webhook, so one endpoint can speak
another client's format (see docs/endpoints.md, "Transformers").

An input transformer takes the request's JSON document and returns one in the
Webhook Endpoint's format ({userId, sessionId, text, data}); an output transformer
takes the delivered payload ({userId, sessionId, AIOutput}) and returns the JSON
document to POST instead. Both are plain (synchronous) functions.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import structlog

from flowhook.errors import InvalidRequest
from flowhook.trusted_code import import_function

log = structlog.get_logger(__name__)

Transformer = Callable[[Any], Any]


class Transformers:
    """Resolves ``module:function`` / ``file.py:function`` (files in ``base_dir``, the
    flows dir) once, and applies them."""

    def __init__(self, base_dir: Path) -> None:
        # import_function resolves file.py names next to the "flow file" it is given.
        self._anchor = str(base_dir / "_")
        self._functions: dict[str, Transformer] = {}

    def check(self, spec: str, field: str) -> None:
        """Raise a 400 naming ``field`` when ``spec`` cannot be imported."""
        try:
            self._get(spec)
        except ValueError as exc:
            raise InvalidRequest(
                f"{field}: {exc}", field=field, expected="an importable 'module:function'"
            ) from None

    def transform_input(self, spec: str, body: bytes, endpoint_id: str) -> bytes:
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest(
                f"request body is not valid JSON: {exc}", expected="a JSON object"
            ) from None
        try:
            result = self._get(spec)(doc)
            return orjson.dumps(result)
        except Exception as exc:  # trusted, but still user code: never a 500
            log.warning(
                "transformer.input_failed",
                endpoint_id=endpoint_id,
                transformer=spec,
                error=type(exc).__name__,
            )
            raise InvalidRequest(
                "the endpoint's input transformer could not read this request "
                f"({type(exc).__name__})",
                expected="a request in the format this endpoint's input transformer reads",
            ) from None

    def transform_output(self, spec: str, payload: bytes, endpoint_id: str) -> bytes:
        """The payload to deliver; the standard one when the transformer fails."""
        try:
            return orjson.dumps(self._get(spec)(orjson.loads(payload)))
        except Exception as exc:
            log.warning(
                "transformer.output_failed",
                endpoint_id=endpoint_id,
                transformer=spec,
                error=type(exc).__name__,
            )
            return payload

    def function(self, spec: str) -> Callable[..., Any]:
        """The function ``spec`` names (imported once); raises ``ValueError``."""
        return self._get(spec)

    def _get(self, spec: str) -> Transformer:
        function = self._functions.get(spec)
        if function is None:
            function = self._functions[spec] = import_function(spec, self._anchor)
        return function
