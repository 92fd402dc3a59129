"""Managing endpoints and their API keys: the one service both the admin API and CLI call."""

from __future__ import annotations

import difflib
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import structlog

from flowhook.delivery.signing import new_signing_secret
from flowhook.endpoints.cache import EndpointCache
from flowhook.endpoints.models import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyView,
    EndpointCreate,
    EndpointCreated,
    EndpointUpdate,
    EndpointView,
    SigningSecretRotated,
    to_datetime,
)
from flowhook.endpoints.secrets import (
    hash_api_key,
    key_display_prefix,
    new_api_key,
    new_url_token,
)
from flowhook.endpoints.security import PASSWORD, SIGNING, EndpointSecurity
from flowhook.endpoints.settings import SETTING_FIELDS, TRANSFORMER_FIELDS, EndpointSettings
from flowhook.errors import Conflict, InvalidRequest, NotFound
from flowhook.sessions.transformers import Transformers
from flowhook.storage.config_writes import PendingWork
from flowhook.storage.deliveries import DeliveryStore
from flowhook.storage.records import ApiKeyRecord, EndpointRecord
from flowhook.storage.store import SqlStore

log = structlog.get_logger(__name__)

PAUSED_REASON = "paused by an operator (deliveryEnabled: false)"

# Told when this service switched an endpoint's delivery: (endpoint_id, enabled).
DeliverySwitchHook = Callable[[str, bool], Awaitable[None]]


class EndpointService:
    def __init__(
        self,
        store: SqlStore,
        *,
        flow_exists: Callable[[str], bool],
        base_url: str,
        cache: EndpointCache | None = None,
        security: EndpointSecurity,
        on_delivery_switch: DeliverySwitchHook | None = None,
        transformers: Transformers | None = None,
        on_deleted: Callable[[str], None] | None = None,
        flow_names: Callable[[], Iterable[str]] | None = None,
    ) -> None:
        self._on_deleted = on_deleted
        self._transformers = transformers
        self._flow_names = flow_names
        self._store = store
        self._deliveries = DeliveryStore(store)
        self._on_delivery_switch = on_delivery_switch
        self._flow_exists = flow_exists
        self._base_url = base_url.rstrip("/")
        self._cache = cache
        self._security = security

    def view(self, rec: EndpointRecord) -> EndpointView:
        # Secrets never leave through a view: only whether they are set.
        return EndpointView(
            id=rec.id,
            name=rec.name,
            type=rec.type,
            flow=rec.flow,
            endpoint_url=f"{self._base_url}/endpoint/{rec.url_token}",
            url_token=rec.url_token,
            auth_method=rec.auth_method,
            webhook_url=rec.webhook_url or None,
            webhook_user=rec.webhook_user,
            has_webhook_password=bool(rec.webhook_password),
            locale=rec.locale,
            active=rec.active,
            signing=bool(rec.signing_secret),
            signing_secret_rotated_at=None
            if rec.signing_secret_rotated_at is None
            else to_datetime(rec.signing_secret_rotated_at),
            delivery_disabled=rec.delivery_disabled_reason is not None,
            delivery_disabled_reason=rec.delivery_disabled_reason,
            delivery_disabled_at=None
            if rec.delivery_disabled_at is None
            else to_datetime(rec.delivery_disabled_at),
            created_at=to_datetime(rec.created_at),
            updated_at=to_datetime(rec.updated_at),
            **EndpointSettings.parse(rec.settings).model_dump(),
        )

    def _check_transformers(self, fields: dict[str, Any]) -> None:
        for name in TRANSFORMER_FIELDS:
            spec = fields.get(name)
            if spec is not None and self._transformers is not None:
                self._transformers.check(spec, _camel(name))

    def _check_flow(self, flow: str, field: str = "flow") -> None:
        if not self._flow_exists(flow):
            names = sorted(self._flow_names()) if self._flow_names is not None else []
            close = difflib.get_close_matches(flow, names, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise InvalidRequest(
                f"flow {flow!r} does not exist{hint}",
                field=field,
                expected="one of: " + ", ".join(names) if names else "the name of a flow",
            )

    async def create(self, req: EndpointCreate) -> EndpointCreated:
        """Create an endpoint; the answer carries its signing secret (if any) this once."""
        security = self._security
        self._check_flow(req.flow)
        if req.type == "webhook" and not req.webhook_url:
            raise InvalidRequest(
                "webhookUrl is required for a webhook endpoint",
                field="webhookUrl",
                expected="an absolute http:// or https:// URL (or type: rest)",
            )
        if req.webhook_url:
            security.check_webhook_url(req.webhook_url)
        self._check_transformers(req.model_dump(include=set(TRANSFORMER_FIELDS)))
        if req.copilot_flow is not None:
            self._check_flow(req.copilot_flow, "copilotFlow")
        settings = EndpointSettings().merged(req.model_dump(include=set(SETTING_FIELDS)))
        now = time.time()
        endpoint_id = str(uuid.uuid4())
        secret = new_signing_secret() if req.signing else None
        rec = EndpointRecord(
            id=endpoint_id,
            name=req.name,
            flow=req.flow,
            url_token=new_url_token(),
            auth_method=req.auth_method,
            webhook_url=req.webhook_url or "",
            webhook_user=req.webhook_user,
            webhook_password=None
            if req.webhook_password is None
            else security.seal(endpoint_id, PASSWORD, req.webhook_password),
            locale=req.locale,
            active=req.active,
            created_at=now,
            updated_at=now,
            signing_secret=None if secret is None else security.seal(endpoint_id, SIGNING, secret),
            signing_secret_rotated_at=None if secret is None else now,
            type=req.type,
            settings=settings.dump(),
        )
        await self._store.create_endpoint(rec)
        return EndpointCreated(**self.view(rec).model_dump(), signing_secret=secret)

    async def get_record(self, endpoint_id: str) -> EndpointRecord:
        rec = await self._store.get_endpoint(endpoint_id)
        if rec is None:
            raise NotFound(f"no endpoint with id {endpoint_id!r}", id=endpoint_id)
        return rec

    async def get(self, endpoint_id: str) -> EndpointView:
        return self.view(await self.get_record(endpoint_id))

    async def list_all(self) -> list[EndpointView]:
        return [self.view(r) for r in await self._store.list_endpoints()]

    async def update(self, endpoint_id: str, req: EndpointUpdate) -> EndpointView:
        changes = req.model_dump(exclude_unset=True)
        for required in (
            "name",
            "flow",
            "webhook_url",
            "auth_method",
            "active",
            "delivery_enabled",
            "type",
        ):
            if required in changes and changes[required] is None:
                raise InvalidRequest(
                    f"{_camel(required)} cannot be null", field=_camel(required), expected="a value"
                )
        if "flow" in changes:
            self._check_flow(changes["flow"])
        setting_changes = {k: changes.pop(k) for k in SETTING_FIELDS if k in changes}
        self._check_transformers(setting_changes)
        if setting_changes.get("copilot_flow") is not None:
            self._check_flow(setting_changes["copilot_flow"], "copilotFlow")
        if setting_changes or changes.get("type") == "webhook":
            current = await self.get_record(endpoint_id)
            if setting_changes:
                merged = EndpointSettings.parse(current.settings).merged(setting_changes)
                changes["settings"] = merged.dump()
            if changes.get("type") == "webhook" and not (
                changes.get("webhook_url") or current.webhook_url
            ):
                raise InvalidRequest(
                    "webhookUrl is required for a webhook endpoint",
                    field="webhookUrl",
                    expected="an absolute http:// or https:// URL",
                )
        security = self._security
        if "webhook_url" in changes:
            security.check_webhook_url(changes["webhook_url"])
        if changes.get("webhook_password") is not None:
            changes["webhook_password"] = security.seal(
                endpoint_id, PASSWORD, changes["webhook_password"]
            )
        signing = changes.pop("signing", None)
        if signing is False:
            changes.update(
                signing_secret=None, previous_signing_secret=None, signing_secret_rotated_at=None
            )
        elif signing is True and not (await self.get_record(endpoint_id)).signing_secret:
            raise InvalidRequest(
                "signing cannot be switched on by an update: rotate the signing secret "
                "(POST /api/v1/endpoints/{id}/signing-secret/rotate) to create one",
                field="signing",
                expected="false, or the rotate call",
            )
        enable = changes.pop("delivery_enabled", None)
        switched = False
        if enable is not None:
            switched = await self._switch_delivery(endpoint_id, enable)
        rec = await self._store.update_endpoint(endpoint_id, changes)
        if rec is None:
            raise NotFound(f"no endpoint with id {endpoint_id!r}", id=endpoint_id)
        self._invalidate(rec.url_token)
        if switched and self._on_delivery_switch is not None:
            await self._on_delivery_switch(endpoint_id, bool(enable))
        return self.view(rec)

    async def _switch_delivery(self, endpoint_id: str, enable: bool) -> bool:
        """Switch delivery on or off; returns whether it changed."""
        current = await self.get_record(endpoint_id)
        if enable == (current.delivery_disabled_reason is None):
            return False
        reason = None if enable else PAUSED_REASON
        if not await self._deliveries.set_delivery_disabled(endpoint_id, reason, time.time()):
            raise NotFound(f"no endpoint with id {endpoint_id!r}", id=endpoint_id)
        log.info(
            "endpoint delivery enabled" if enable else "endpoint delivery disabled",
            endpoint_id=endpoint_id,
            by="operator",
        )
        return True

    async def rotate_signing_secret(self, endpoint_id: str) -> SigningSecretRotated:
        """A new signing secret, returned this once; the previous one (if any) keeps
        signing for the grace period, so receivers can switch without losing deliveries."""
        security = self._security
        rec = await self.get_record(endpoint_id)
        secret = new_signing_secret()
        now = time.time()
        updated = await self._store.update_endpoint(
            endpoint_id,
            {
                "signing_secret": security.seal(endpoint_id, SIGNING, secret),
                "previous_signing_secret": rec.signing_secret,
                "signing_secret_rotated_at": now,
            },
        )
        if updated is None:
            raise NotFound(f"no endpoint with id {endpoint_id!r}", id=endpoint_id)
        self._invalidate(updated.url_token)
        return SigningSecretRotated(
            id=endpoint_id,
            signing_secret=secret,
            rotated_at=to_datetime(now),
            previous_secret_expires_at=None
            if rec.signing_secret is None
            else to_datetime(now + security.grace_seconds),
        )

    async def delete(self, endpoint_id: str, *, force: bool = False) -> PendingWork:
        """Delete an endpoint and its keys. Refused (409) while accepted messages or
        outputs are pending, unless ``force``: then each of them is failed, with the
        reason recorded. Returns what was failed."""
        rec = await self.get_record(endpoint_id)
        result = await self._store.delete_endpoint(endpoint_id, force=force)
        if not result.deleted and result.pending.none:
            raise NotFound(f"no endpoint with id {endpoint_id!r}", id=endpoint_id)
        if not result.deleted:
            pending = result.pending
            raise Conflict(
                f"the endpoint still has {pending.messages} accepted message(s) not yet "
                f"processed and {pending.outputs} output(s) not yet delivered; wait for "
                "them, or delete with force to fail each of them (the reason is recorded)",
                field="force",
                expected="true, to fail the pending work",
                pendingMessages=pending.messages,
                pendingOutputs=pending.outputs,
            )
        self._invalidate(rec.url_token)
        log.info(
            "endpoint.deleted",
            endpoint_id=endpoint_id,
            failed_messages=result.pending.messages,
            failed_outputs=result.pending.outputs,
        )
        if self._on_deleted is not None:
            self._on_deleted(endpoint_id)
        return result.pending

    # -- API keys ---------------------------------------------------------------------------

    async def create_key(self, endpoint_id: str, req: ApiKeyCreate) -> ApiKeyCreated:
        ep = await self.get_record(endpoint_id)
        key = new_api_key()
        rec = ApiKeyRecord(
            id=str(uuid.uuid4()),
            endpoint_id=endpoint_id,
            name=req.name,
            key_hash=hash_api_key(key),
            key_prefix=key_display_prefix(key),
            created_at=time.time(),
        )
        await self._store.create_api_key(rec)
        self._invalidate(ep.url_token)
        return ApiKeyCreated(
            id=rec.id,
            name=rec.name,
            key=key,
            key_prefix=rec.key_prefix,
            created_at=to_datetime(rec.created_at),
        )

    async def list_keys(self, endpoint_id: str) -> list[ApiKeyView]:
        await self.get_record(endpoint_id)
        return [
            ApiKeyView(
                id=k.id,
                name=k.name,
                key_prefix=k.key_prefix,
                created_at=to_datetime(k.created_at),
                last_used_at=None if k.last_used_at is None else to_datetime(k.last_used_at),
            )
            for k in await self._store.list_api_keys(endpoint_id)
        ]

    async def revoke_key(self, endpoint_id: str, key_id: str) -> None:
        ep = await self.get_record(endpoint_id)
        if not await self._store.delete_api_key(endpoint_id, key_id):
            raise NotFound(f"endpoint has no API key with id {key_id!r}", id=key_id)
        self._invalidate(ep.url_token)

    def _invalidate(self, url_token: str) -> None:
        if self._cache is not None:
            self._cache.invalidate(url_token)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)
