"""Managing endpoints and their API keys: the one service both the admin API and CLI call."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from flowhook.endpoints.cache import EndpointCache
from flowhook.endpoints.models import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyView,
    EndpointCreate,
    EndpointUpdate,
    EndpointView,
    to_datetime,
)
from flowhook.endpoints.secrets import (
    hash_api_key,
    key_display_prefix,
    new_api_key,
    new_url_token,
)
from flowhook.errors import InvalidRequest, NotFound, Unprocessable
from flowhook.storage.records import ApiKeyRecord, EndpointRecord
from flowhook.storage.store import SqlStore


class EndpointService:
    def __init__(
        self,
        store: SqlStore,
        *,
        flow_exists: Callable[[str], bool],
        base_url: str,
        cache: EndpointCache | None = None,
    ) -> None:
        self._store = store
        self._flow_exists = flow_exists
        self._base_url = base_url.rstrip("/")
        self._cache = cache

    def view(self, rec: EndpointRecord) -> EndpointView:
        return EndpointView(
            id=rec.id,
            name=rec.name,
            flow=rec.flow,
            endpoint_url=f"{self._base_url}/endpoint/{rec.url_token}",
            url_token=rec.url_token,
            auth_method=rec.auth_method,
            webhook_url=rec.webhook_url,
            webhook_user=rec.webhook_user,
            has_webhook_password=bool(rec.webhook_password),
            locale=rec.locale,
            active=rec.active,
            created_at=to_datetime(rec.created_at),
            updated_at=to_datetime(rec.updated_at),
        )

    def _check_flow(self, flow: str) -> None:
        if not self._flow_exists(flow):
            raise Unprocessable(f"flow {flow!r} does not exist", field="flow", flow=flow)

    async def create(self, req: EndpointCreate) -> EndpointView:
        self._check_flow(req.flow)
        now = time.time()
        rec = EndpointRecord(
            id=str(uuid.uuid4()),
            name=req.name,
            flow=req.flow,
            url_token=new_url_token(),
            auth_method=req.auth_method,
            webhook_url=req.webhook_url,
            webhook_user=req.webhook_user,
            webhook_password=req.webhook_password,
            locale=req.locale,
            active=req.active,
            created_at=now,
            updated_at=now,
        )
        await self._store.create_endpoint(rec)
        return self.view(rec)

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
        for required in ("name", "flow", "webhook_url", "auth_method", "active"):
            if required in changes and changes[required] is None:
                raise InvalidRequest(
                    f"{_camel(required)} cannot be null", field=_camel(required), expected="a value"
                )
        if "flow" in changes:
            self._check_flow(changes["flow"])
        rec = await self._store.update_endpoint(endpoint_id, changes)
        if rec is None:
            raise NotFound(f"no endpoint with id {endpoint_id!r}", id=endpoint_id)
        self._invalidate(rec.url_token)
        return self.view(rec)

    async def delete(self, endpoint_id: str) -> None:
        rec = await self.get_record(endpoint_id)
        if not await self._store.delete_endpoint(endpoint_id):
            raise NotFound(f"no endpoint with id {endpoint_id!r}", id=endpoint_id)
        self._invalidate(rec.url_token)

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
