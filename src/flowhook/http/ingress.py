"""POST /endpoint/{urlToken}: the Webhook Endpoint itself."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from flowhook.http.deps import (
    ACCEPTED_DOC,
    accepted_response,
    is_admin,
    request_body,
    services_of,
)
from flowhook.http.fast_ingress import answer_for

router = APIRouter(tags=["ingress"])

_ID = {
    "type": "string",
    "minLength": 1,
    "maxLength": 1024,
    "pattern": "^[^\\u0000]*\\S[^\\u0000]*$",
}
_MESSAGE = {
    "type": "object",
    "required": ["userId", "sessionId"],
    "properties": {
        "userId": {**_ID, "description": "The end user's ID."},
        "sessionId": {**_ID, "description": "Tracks the session and its state."},
        "text": {
            "type": ["string", "null"],
            "pattern": "^[^\\u0000]*$",
            "description": "Text for the flow; null is the same as absent.",
        },
        "data": {
            "type": ["object", "null"],
            "description": "Data for the flow; null is the same as absent.",
        },
    },
    "description": "At least one of a non-empty text and a data object must be given.",
    "anyOf": [
        {"required": ["text"], "properties": {"text": {"type": "string", "minLength": 1}}},
        {"required": ["data"], "properties": {"data": {"type": "object"}}},
    ],
}
_ACCEPTED = {**ACCEPTED_DOC, "description": "Committed; outputs will be POSTed to the webhook."}
_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
_REQUEST_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": _MESSAGE,
                "example": {
                    "userId": "user123",
                    "sessionId": "session123",
                    "text": "Hello, I need help with my order",
                    "data": {"exampleKey": "exampleValue"},
                },
            }
        },
    },
    # No key needed when the endpoint's authMethod is none.
    "security": [{"webhookKey": []}, {}],
    "responses": {
        "202": _ACCEPTED,
        "200": {
            "description": "A rest endpoint: the turn's outputs, once committed.",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["userId", "sessionId", "traceId", "outputs"],
                        "properties": {
                            "userId": {"type": "string"},
                            "sessionId": {"type": "string"},
                            "traceId": {"type": "string"},
                            "outputs": {"type": "array", "items": {"type": "object"}},
                        },
                    }
                }
            },
        },
        "401": {"description": "Missing or invalid X-Webhook-Key.", "content": _ERROR},
        "404": {"description": "No active endpoint at this URL.", "content": _ERROR},
        "429": {"description": "The endpoint's rate limit is exceeded.", "content": _ERROR},
        "504": {"description": "A rest endpoint's turn took too long.", "content": _ERROR},
    },
}
# inject and notify: the endpoint's key, or the admin token; never a rest endpoint.
_SCOPED_SCHEMA: dict[str, Any] = {
    **_REQUEST_SCHEMA,
    "security": [{"webhookKey": []}, {"adminToken": []}],
    "responses": {
        "202": _ACCEPTED,
        "401": {"description": "Neither a valid key nor the admin token.", "content": _ERROR},
        "404": {"description": "No active endpoint at this URL.", "content": _ERROR},
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
    openapi_extra=_SCOPED_SCHEMA,
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
    openapi_extra=_SCOPED_SCHEMA,
    response_class=Response,
)
async def notify_user(url_token: str, request: Request) -> Response:
    return await _endpoint_scoped(request, url_token, "notify")
