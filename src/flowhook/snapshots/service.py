"""Export and import of flows and endpoint settings: the one service the CLI and the
admin API both call.

Export: the YAML text of every flow file in the flows dir, and each endpoint's settings
(its admin API view without what belongs to one installation). API keys are never
exported. Webhook passwords and signing secrets only when asked, encrypted with a
passphrase.

Import: everything is checked first (format, secrets, every flow with the flow loader,
every endpoint's settings, name conflicts); any problem rejects the whole import and
lists every problem. Then flow files are written, the flows reloaded, and endpoints
created (with a fresh URL token each: a URL token is a credential of one installation,
like an API key) or, with ``replace``, updated in place.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import structlog
from pydantic import BaseModel, ValidationError

from flowhook import __version__
from flowhook.delivery.signing import secret_key
from flowhook.endpoints.models import EndpointCreate, EndpointUpdate, EndpointView
from flowhook.endpoints.security import PASSWORD, SIGNING, EndpointSecurity
from flowhook.endpoints.service import EndpointService
from flowhook.endpoints.vault import UnreadableSecret
from flowhook.errors import FlowhookError, Unprocessable
from flowhook.flows.registry import FlowRegistry
from flowhook.snapshots.crypto import check_passphrase, open_secrets, seal_secrets
from flowhook.snapshots.errors import SnapshotInvalid
from flowhook.snapshots.flows import export_flows, plan_flows, write_flows
from flowhook.snapshots.format import SECRET_KINDS, Snapshot, SnapshotEndpoint
from flowhook.snapshots.models import EndpointImported, ImportResult, OnConflict
from flowhook.storage.records import EndpointRecord
from flowhook.storage.store import SqlStore

log = structlog.get_logger(__name__)

# View fields that belong to one installation or are state, not settings. Every other
# field of the endpoint view is exported, so settings added later travel without
# changes here.
NOT_EXPORTED = frozenset(
    {
        "id",
        "name",  # the entry's key, stored next to the settings
        "endpoint_url",
        "url_token",
        "has_webhook_password",
        "signing",
        "signing_secret_rotated_at",
        "delivery_disabled",
        "delivery_disabled_reason",
        "delivery_disabled_at",
        "created_at",
        "updated_at",
    }
)
# Settings naming a flow: it must exist once the snapshot's flows are written.
FLOW_SETTINGS = ("flow", "copilotFlow")
# Secrets never travel as settings: only encrypted, in the snapshot's ``secrets``.
SECRET_SETTINGS = frozenset({"webhookPassword", "signing", "signingSecret"})

FlowsChanged = Callable[[FlowRegistry], None]


def _aliases(model: type[BaseModel]) -> dict[str, str]:
    return {(f.alias or name): name for name, f in model.model_fields.items()}


def _view_defaults() -> dict[str, Any]:
    return {
        (f.alias or name): f.default
        for name, f in EndpointView.model_fields.items()
        if not f.is_required()
    }


@dataclass
class _Step:
    entry: SnapshotEndpoint
    action: Literal["created", "replaced", "skipped"]
    existing: EndpointRecord | None = None
    create: EndpointCreate | None = None
    update: EndpointUpdate | None = None
    signing_secret: str | None = field(default=None, repr=False)
    lost: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


class SnapshotService:
    def __init__(
        self,
        endpoints: EndpointService,
        store: SqlStore,
        security: EndpointSecurity,
        flows_dir: Path,
        *,
        on_flows_changed: FlowsChanged | None = None,
        allow_code_modules: bool = False,
    ) -> None:
        self._allow_code_modules = allow_code_modules
        self._endpoints = endpoints
        self._store = store
        self._security = security
        self._flows_dir = flows_dir
        self._on_flows_changed = on_flows_changed

    # -- export -----------------------------------------------------------------------------

    async def export(
        self, *, include_secrets: bool = False, passphrase: str | None = None
    ) -> Snapshot:
        """The snapshot of this installation. Secrets only with ``include_secrets``,
        encrypted with ``passphrase``; API keys never."""
        if include_secrets:
            check_passphrase(passphrase)
        flows = export_flows(self._flows_dir)
        entries: list[SnapshotEndpoint] = []
        secrets: dict[str, dict[str, str]] = {}
        for rec in await self._store.list_endpoints():
            settings = self._endpoints.view(rec).model_dump(
                mode="json", by_alias=True, exclude=set(NOT_EXPORTED)
            )
            kinds = [
                kind
                for kind, stored in zip(
                    SECRET_KINDS, (rec.webhook_password, rec.signing_secret), strict=True
                )
                if stored
            ]
            entries.append(SnapshotEndpoint(name=rec.name, settings=settings, secrets=kinds))
            if include_secrets and kinds:
                secrets[rec.name] = self._plain_secrets(rec)
        box = None
        if include_secrets:
            assert passphrase is not None
            box = seal_secrets(secrets, passphrase)
        log.info(
            "snapshot.exported",
            flows=len(flows),
            endpoints=len(entries),
            with_secrets=include_secrets,
        )
        return Snapshot(
            created_at=datetime.now(tz=UTC),
            flowhook_version=__version__,
            flows=flows,
            endpoints=entries,
            secrets=box,
        )

    def _plain_secrets(self, rec: EndpointRecord) -> dict[str, str]:
        out: dict[str, str] = {}
        try:
            if rec.webhook_password:
                out["webhookPassword"] = self._security.unseal(
                    rec.id, PASSWORD, rec.webhook_password
                )
            if rec.signing_secret:
                out["signingSecret"] = self._security.unseal(rec.id, SIGNING, rec.signing_secret)
        except UnreadableSecret:
            raise Unprocessable(
                f"the stored secrets of endpoint {rec.name!r} do not decrypt with this "
                "installation's master key (FLOWHOOK_SECRET_KEY or the data dir's key file)",
                endpoint=rec.name,
            ) from None
        return out

    # -- import -----------------------------------------------------------------------------

    async def import_(
        self,
        snapshot: Snapshot,
        *,
        passphrase: str | None = None,
        on_conflict: OnConflict = "fail",
    ) -> ImportResult:
        """Check everything, then write; any problem rejects the whole import
        (``SnapshotInvalid`` lists every problem) and nothing is written."""
        secrets = {} if snapshot.secrets is None else open_secrets(snapshot.secrets, passphrase)
        plan = plan_flows(
            self._flows_dir, snapshot.flows, on_conflict, allow_modules=self._allow_code_modules
        )
        problems = list(plan.problems)
        steps = await self._plan_endpoints(snapshot, secrets, plan.names, on_conflict, problems)
        if problems:
            raise SnapshotInvalid(problems)

        write_flows(self._flows_dir, plan.writes)
        if plan.writes and self._on_flows_changed is not None:
            self._on_flows_changed(FlowRegistry.load(self._flows_dir))
        imported = [await self._apply(step) for step in steps]
        result = ImportResult(
            flows=plan.results,
            endpoints=imported,
            needs_api_key=[e.name for e in imported if e.needs_api_key],
            lost_secrets={e.name: e.lost_secrets for e in imported if e.lost_secrets},
            flows_changed=bool(plan.writes),
        )
        log.info(
            "snapshot.imported",
            flows_written=len(plan.writes),
            endpoints=len(imported),
            on_conflict=on_conflict,
            needs_api_key=len(result.needs_api_key),
        )
        return result

    async def _plan_endpoints(
        self,
        snapshot: Snapshot,
        secrets: dict[str, Any],
        flow_names: set[str],
        on_conflict: OnConflict,
        problems: list[str],
    ) -> list[_Step]:
        existing = {rec.name: rec for rec in await self._store.list_endpoints()}
        create_fields = _aliases(EndpointCreate)
        update_fields = _aliases(EndpointUpdate)
        defaults = _view_defaults()
        steps: list[_Step] = []
        seen: set[str] = set()
        for entry in snapshot.endpoints:
            where = f"endpoint {entry.name!r}"
            if entry.name in seen:
                problems.append(f"{where} is in the snapshot twice")
                continue
            seen.add(entry.name)
            current = existing.get(entry.name)
            if current is not None and on_conflict == "fail":
                problems.append(
                    f"{where} already exists on this installation "
                    "(choose --on-conflict skip or replace)"
                )
                continue
            if current is not None and on_conflict == "skip":
                steps.append(_Step(entry, "skipped", existing=current))
                continue
            settings = {k: v for k, v in entry.settings.items() if k not in SECRET_SETTINGS}
            ignored = [k for k in entry.settings if k in SECRET_SETTINGS]
            given = _secrets_of(entry, secrets.get(entry.name), where, problems)
            for setting in FLOW_SETTINGS:
                flow = settings.get(setting)
                if isinstance(flow, str) and flow not in flow_names:
                    problems.append(
                        f"{where}: {setting} {flow!r} is neither in the snapshot nor on this "
                        "installation"
                    )
            url = settings.get("webhookUrl")
            if isinstance(url, str):
                try:
                    self._security.check_webhook_url(url)
                except FlowhookError as exc:
                    problems.append(f"{where}: {exc.message}")
            step = _Step(entry, "created" if current is None else "replaced", existing=current)
            step.signing_secret = given.get("signingSecret")
            if current is None:
                fields = {k: v for k, v in settings.items() if k in create_fields}
                fields.update(name=entry.name, signing=False)
                if "webhookPassword" in given:
                    fields["webhookPassword"] = given["webhookPassword"]
                later = {
                    k: v
                    for k, v in settings.items()
                    if k not in create_fields and k in update_fields
                }
                step.ignored = ignored + _unknown(
                    settings, set(create_fields) | set(update_fields), defaults
                )
                step.lost = [k for k in entry.secrets if k not in given]
                step.create = _model(EndpointCreate, fields, where, problems)
                if later:
                    step.update = _model(EndpointUpdate, later, where, problems)
            else:
                fields = {k: v for k, v in settings.items() if k in update_fields}
                fields["name"] = entry.name
                self._replace_secrets(step, current, given, fields)
                step.ignored = ignored + _unknown(settings, set(update_fields), defaults)
                step.update = _model(EndpointUpdate, fields, where, problems)
            steps.append(step)
        return steps

    @staticmethod
    def _replace_secrets(
        step: _Step, current: EndpointRecord, given: dict[str, str], fields: dict[str, Any]
    ) -> None:
        """Replace: the target ends up with the source's secrets. A secret the source had
        but the snapshot does not carry is kept if the target has one, else it is lost."""
        had = set(step.entry.secrets)
        if "webhookPassword" in given:
            fields["webhookPassword"] = given["webhookPassword"]
        elif "webhookPassword" not in had:
            fields["webhookPassword"] = None
        elif not current.webhook_password:
            step.lost.append("webhookPassword")
        if "signingSecret" not in given:
            if "signingSecret" not in had:
                fields["signing"] = False
            elif not current.signing_secret:
                step.lost.append("signingSecret")

    async def _apply(self, step: _Step) -> EndpointImported:
        endpoints = self._endpoints
        if step.action == "skipped":
            assert step.existing is not None
            view = endpoints.view(step.existing)
        elif step.action == "created":
            assert step.create is not None
            view = await endpoints.create(step.create)
            if step.update is not None:
                view = await endpoints.update(view.id, step.update)
            if step.signing_secret is not None:
                await self._set_signing_secret(view.id, step.signing_secret)
                view = await endpoints.update(view.id, EndpointUpdate())  # drops cached copies
        else:
            assert step.existing is not None
            assert step.update is not None
            if step.signing_secret is not None:
                await self._set_signing_secret(step.existing.id, step.signing_secret)
            view = await endpoints.update(step.existing.id, step.update)
        needs_key = view.auth_method == "apiKey" and not await endpoints.list_keys(view.id)
        return EndpointImported(
            name=view.name,
            id=view.id,
            endpoint_url=view.endpoint_url,
            action=step.action,
            needs_api_key=needs_key,
            lost_secrets=step.lost,
            ignored_settings=step.ignored,
        )

    async def _set_signing_secret(self, endpoint_id: str, secret: str) -> None:
        sealed = self._security.seal(endpoint_id, SIGNING, secret)
        await self._store.update_endpoint(
            endpoint_id,
            {
                "signing_secret": sealed,
                "previous_signing_secret": None,
                "signing_secret_rotated_at": time.time(),
            },
        )


def _secrets_of(
    entry: SnapshotEndpoint, raw: Any, where: str, problems: list[str]
) -> dict[str, str]:
    """The decrypted secrets of one endpoint, checked (never quoted in a problem)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append(f"{where}: its encrypted secrets are not an object")
        return {}
    out: dict[str, str] = {}
    for kind in SECRET_KINDS:
        value = raw.get(kind)
        if value is None:
            continue
        if not isinstance(value, str) or not value:
            problems.append(f"{where}: its encrypted {kind} is not a non-empty string")
            continue
        if kind == "signingSecret":
            try:
                secret_key(value)
            except ValueError:
                problems.append(f"{where}: its encrypted signingSecret is malformed")
                continue
        out[kind] = value
    return out


def _unknown(settings: dict[str, Any], known: Iterable[str], defaults: dict[str, Any]) -> list[str]:
    """Settings this installation does not accept; a value equal to the view's default
    (e.g. a type this installation only has) is not worth a warning."""
    known = set(known)
    return [
        k for k, v in settings.items() if k not in known and (k not in defaults or defaults[k] != v)
    ]


def _model(
    cls: type[EndpointCreate] | type[EndpointUpdate],
    fields: dict[str, Any],
    where: str,
    problems: list[str],
) -> Any:
    try:
        return cls.model_validate(fields)
    except ValidationError as exc:
        for err in exc.errors(include_input=False):
            loc = ".".join(str(p) for p in err["loc"]) or "settings"
            problems.append(f"{where}: {loc}: {err['msg']}")
        return None
