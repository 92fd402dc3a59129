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

from flowhook.errors import InvalidRequest
from flowhook.isolation import CodeWorkers
from flowhook.trusted_code import CodeRef, resolve_code_ref


class Transformers:
    """Resolves ``file.py:function`` names (files in ``base_dir``, the flows dir) once;
    ``workers`` runs them (``flowhook.sessions.transform_steps`` decides when)."""

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
            self.ref(spec)
        except ValueError as exc:
            raise InvalidRequest(
                f"{field}: {exc}",
                field=field,
                expected="'file.py:function' naming a function in a file of the flows dir",
            ) from None

    def ref(self, spec: str) -> CodeRef:
        """The resolved name (checked once); raises ``ValueError``."""
        ref = self._refs.get(spec)
        if ref is None:
            ref = resolve_code_ref(spec, self._base_dir, allow_modules=self._allow_modules)
            self._refs[spec] = ref
        return ref


def failure_reason(exc: Exception) -> str:
    """Why a transformer failed, safe to show and log: the exception type the code
    raised, or ours."""
    text = str(exc)
    kind = text.split(":", 1)[0] if ":" in text else type(exc).__name__
    if type(exc).__name__ == "CodeTimeout":
        return "timed out"
    return kind if kind.isidentifier() else type(exc).__name__
