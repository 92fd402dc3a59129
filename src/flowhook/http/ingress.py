"""POST /endpoint/{urlToken}: the Webhook Endpoint itself."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from flowhook.errors import PayloadTooLarge
from flowhook.http.deps import services_of

router = APIRouter(tags=["ingress"])

_REQUEST_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["userId", "sessionId"],
                    "properties": {
                        "userId": {
                            "type": "string",
                            "minLength": 1,
                            "description": "The end user's ID.",
                        },
                        "sessionId": {
                            "type": "string",
                            "minLength": 1,
                            "description": "Tracks the session and its state.",
                        },
                        "text": {"type": "string", "description": "Text for the flow."},
                        "data": {"type": "object", "description": "Data for the flow."},
                    },
                    "description": "At least one of text and data must be given.",
                },
                "example": {
                    "userId": "user123",
                    "sessionId": "session123",
                    "text": "Hello, I need help with my order",
                    "data": {"exampleKey": "exampleValue"},
                },
            }
        },
    },
    "parameters": [
        {
            "name": "X-Webhook-Key",
            "in": "header",
            "required": False,
            "schema": {"type": "string"},
            "description": "An API key of the endpoint, when it uses API key authentication.",
        }
    ],
    "responses": {
        "202": {
            "description": "Committed; outputs will be POSTed to the webhook URL.",
            "content": {
                "application/json": {"example": {"traceId": "endpoint-httpIncomingMessage-…"}}
            },
        },
        "400": {"description": "The body is not valid; the error names the field."},
        "401": {"description": "Missing or invalid X-Webhook-Key."},
        "404": {"description": "No active endpoint at this URL."},
        "413": {"description": "The body is larger than the configured limit."},
    },
}


@router.post(
    "/endpoint/{url_token}",
    status_code=202,
    summary="Send a user message to the endpoint",
    openapi_extra=_REQUEST_SCHEMA,
    response_class=Response,
)
async def receive_message(url_token: str, request: Request) -> Response:
    services = services_of(request)
    body = await read_limited(request, services.settings.max_body_bytes)
    trace_id = await services.inbox.accept(url_token, body, request.headers.get("x-webhook-key"))
    return Response(
        b'{"traceId":"' + trace_id.encode() + b'"}',
        status_code=202,
        media_type="application/json",
    )


async def read_limited(request: Request, limit: int) -> bytes:
    """The body, refusing (413) anything over ``limit`` bytes before reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"request body is {declared} bytes; the limit is {limit} bytes", limit=limit
        )
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes", limit=limit)
        chunks.append(chunk)
    return b"".join(chunks)
