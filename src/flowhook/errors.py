"""One error tree for the whole product.

Every error a client can cause is a ``FlowhookError`` subclass carrying what the
web layer needs to answer with a precise JSON body. The mapping to HTTP status
codes lives in one place: ``flowhook.http.errors``.
"""

from __future__ import annotations

from typing import Any


class FlowhookError(Exception):
    """Base of every error flowhook raises on purpose."""

    code = "error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = {k: v for k, v in details.items() if v is not None}

    def to_json(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.details}}


class InvalidRequest(FlowhookError):
    """The request is malformed: a field is missing, of the wrong type, or not JSON."""

    code = "invalid_request"

    def __init__(
        self, message: str, *, field: str | None = None, expected: str | None = None
    ) -> None:
        super().__init__(message, field=field, expected=expected)
        self.field = field
        self.expected = expected


class PayloadTooLarge(FlowhookError):
    code = "payload_too_large"


class UnsupportedMediaType(FlowhookError):
    """The body is sent with a content type the route does not read (JSON expected)."""

    code = "unsupported_media_type"


class Unauthorized(FlowhookError):
    code = "unauthorized"


class NotFound(FlowhookError):
    code = "not_found"


class Conflict(FlowhookError):
    code = "conflict"


class Unprocessable(FlowhookError):
    """The request is well-formed but refers to something that does not work (e.g. a
    rest endpoint asked to notify). Answered like every other refused request (400)."""

    code = "unprocessable"


class FlowError(FlowhookError):
    """A flow file or a flow run is broken; raised by the flow loader and engine."""

    code = "flow_error"


class ConfigError(FlowhookError):
    """The settings contradict each other (found at start-up)."""

    code = "config_error"


class RateLimited(FlowhookError):
    """The endpoint's rate limit is exceeded; retry after ``retry_after`` seconds."""

    code = "rate_limited"


class Overloaded(FlowhookError):
    """Too much accepted work is waiting; the client should retry after ``retry_after`` s."""

    code = "overloaded"


class TurnTimeout(FlowhookError):
    """A rest endpoint's turn did not finish in time; it still runs, its outputs are kept."""

    code = "turn_timeout"


class TransformerFailed(FlowhookError):
    """An endpoint's transformer failed with abortOnTransformerError on; the answer it
    should have shaped cannot be given."""

    code = "transformer_failed"


class StorageError(FlowhookError):
    """The database failed; driver errors are translated to this at the storage boundary."""

    code = "storage_error"
