"""POST /endpoint/{urlToken}: the Webhook Endpoint itself."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from flowhook.http.deps import accepted_response, is_admin, request_body, services_of
from flowhook.http.fast_ingress import answer_for

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
    # Requests normally never get here: IngressFastPath answers this route ahead of
    # FastAPI. This route documents it in OpenAPI and serves the bare FastAPI app.
    services = services_of(request)
    body = await request_body(request)
    accepted = await services.inbox.accept(
        url_token,
        body,
        request.headers.get("x-webhook-key"),
        client_ip=request.client.host if request.client else None,
    )
    status, answer = await answer_for(accepted, services.settings.rest_timeout_seconds)
    return Response(answer, status_code=status, media_type="application/json")


async def _endpoint_scoped(request: Request, url_token: str, kind: str) -> Response:
    services = services_of(request)
    body = await request_body(request)
    accepted = await services.inbox.accept(
        url_token,
        body,
        request.headers.get("x-webhook-key"),
        kind=kind,
        scoped=True,
        admin=is_admin(request),
        client_ip=request.client.host if request.client else None,
    )
    return accepted_response(accepted.trace_id)


_SCOPED_DOC = (
    "Authenticated like the endpoint: its X-Webhook-Key when it uses API keys, otherwise "
    "the admin token (Authorization: Bearer). Same body and validation as the ingress."
)


@router.post(
    "/endpoint/{url_token}/inject",
    status_code=202,
    summary="Inject a message into a session, as if the user had sent it",
    description=_SCOPED_DOC + " The flow runs; its outputs go to the webhook as usual.",
    openapi_extra=_REQUEST_SCHEMA,
    response_class=Response,
)
async def inject_message(url_token: str, request: Request) -> Response:
    return await _endpoint_scoped(request, url_token, "message")


@router.post(
    "/endpoint/{url_token}/notify",
    status_code=202,
    summary="Send an output straight to the user's webhook, without running the flow",
    description=_SCOPED_DOC
    + " The text/data is delivered as one output, in order with the session's other outputs.",
    openapi_extra=_REQUEST_SCHEMA,
    response_class=Response,
)
async def notify_user(url_token: str, request: Request) -> Response:
    return await _endpoint_scoped(request, url_token, "notify")
