"""SnapshotService over a real Store (each backend): what is exported, conflicts, replace."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from flowhook.delivery.ssrf import AddressGuard
from flowhook.endpoints.models import ApiKeyCreate, EndpointCreate, EndpointView
from flowhook.endpoints.security import SIGNING, EndpointSecurity
from flowhook.endpoints.service import EndpointService
from flowhook.endpoints.vault import SecretBox
from flowhook.flows.registry import FlowRegistry
from flowhook.snapshots import SnapshotInvalid, SnapshotService
from flowhook.snapshots.service import NOT_EXPORTED
from flowhook.storage.store import SqlStore

GREET = "name: greet\nstart: a\nnodes:\n  a: {type: say, text: hi}\n"


def make_service(store: SqlStore, flows_dir: Path) -> tuple[SnapshotService, EndpointService]:
    security = EndpointSecurity(
        SecretBox(secrets.token_bytes(32)), AddressGuard(["127.0.0.0/8"]), 60.0
    )
    names = set(FlowRegistry.load(flows_dir).names())

    def changed(registry: FlowRegistry) -> None:
        names.update(registry.names())

    endpoints = EndpointService(
        store, flow_exists=lambda n: n in names, base_url="http://x", security=security
    )
    return SnapshotService(
        endpoints, store, security, flows_dir, on_flows_changed=changed
    ), endpoints


@pytest.fixture
def flows_dir(tmp_path: Path) -> Path:
    d = tmp_path / "flows"
    d.mkdir()
    (d / "greet.yaml").write_text(GREET)
    return d


async def test_every_view_setting_is_exported_except_installation_fields(
    store: SqlStore, flows_dir: Path
) -> None:
    """Export carries every field of the endpoint view except id, URL token, state and
    timestamps, so settings added to the view later travel without changes."""
    service, endpoints = make_service(store, flows_dir)
    await endpoints.create(
        EndpointCreate(name="e", flow="greet", webhook_url="http://127.0.0.1:1/h", locale="fr")
    )
    snap = await service.export()
    (entry,) = snap.endpoints
    expected = {
        (f.alias or n) for n, f in EndpointView.model_fields.items() if n not in NOT_EXPORTED
    }
    assert set(entry.settings) == expected
    assert entry.settings["locale"] == "fr"
    assert "urlToken" not in entry.settings


async def test_replace_keeps_id_url_and_api_keys_and_restores_the_signing_secret(
    store: SqlStore, flows_dir: Path
) -> None:
    """--on-conflict replace updates the existing endpoint in place: same id, URL token and
    API keys (so it needs no new key), the snapshot's settings, and the exported signing
    secret."""
    service, endpoints = make_service(store, flows_dir)
    made = await endpoints.create(
        EndpointCreate(
            name="e", flow="greet", webhook_url="http://127.0.0.1:1/h", auth_method="apiKey",
            signing=True, locale="fr",
        )
    )  # fmt: skip
    snap = await service.export(include_secrets=True, passphrase="passphrase-1")
    await endpoints.rotate_signing_secret(made.id)
    await endpoints.create_key(made.id, ApiKeyCreate(name="k"))
    snap.endpoints[0].settings["locale"] = "it"

    result = await service.import_(snap, passphrase="passphrase-1", on_conflict="replace")
    (ep,) = result.endpoints
    assert (ep.action, ep.id, ep.needs_api_key) == ("replaced", made.id, False)
    rec = await endpoints.get_record(made.id)
    assert (rec.url_token, rec.locale) == (made.url_token, "it")
    assert rec.signing_secret is not None
    assert service._security.unseal(rec.id, SIGNING, rec.signing_secret) == made.signing_secret


async def test_conflicts_fail_by_default_and_nothing_is_written(
    store: SqlStore, flows_dir: Path, tmp_path: Path
) -> None:
    """Importing onto an installation that has the same endpoint name and a different flow
    file with the same name lists both conflicts and changes neither."""
    service, endpoints = make_service(store, flows_dir)
    await endpoints.create(
        EndpointCreate(name="e", flow="greet", webhook_url="http://127.0.0.1:1/h")
    )
    snap = await service.export()
    snap.flows[0].text = GREET.replace("hi", "changed")
    with pytest.raises(SnapshotInvalid) as info:
        await service.import_(snap)
    assert len(info.value.problems) == 2
    assert "flow file 'greet.yaml' already exists" in info.value.problems[0]
    assert "endpoint 'e' already exists" in info.value.problems[1]
    assert (flows_dir / "greet.yaml").read_text() == GREET


async def test_unknown_and_secret_settings_are_not_applied_but_reported(
    store: SqlStore, flows_dir: Path, tmp_path: Path
) -> None:
    """A setting this installation does not know, and a password smuggled in clear into
    the settings, are not applied; the result names both."""
    source, endpoints = make_service(store, flows_dir)
    await endpoints.create(
        EndpointCreate(name="e", flow="greet", webhook_url="http://127.0.0.1:1/h")
    )
    snap = await source.export()
    snap.endpoints[0].settings.update(futureSetting=5, webhookPassword="clear-pw")

    target_dir = tmp_path / "target-flows"
    target, target_endpoints = make_service(store, target_dir)
    snap.endpoints[0].name = "copy"
    result = await target.import_(snap)
    (ep,) = result.endpoints
    assert sorted(ep.ignored_settings) == ["futureSetting", "webhookPassword"]
    assert (await target_endpoints.get_record(ep.id)).webhook_password is None


async def test_an_endpoint_webhook_blocked_by_the_ssrf_guard_is_a_problem(
    store: SqlStore, flows_dir: Path
) -> None:
    """A snapshot endpoint whose webhook is a blocked address literal is listed as a
    problem, like creating it through the admin API would be refused."""
    service, endpoints = make_service(store, flows_dir)
    await endpoints.create(
        EndpointCreate(name="e", flow="greet", webhook_url="http://127.0.0.1:1/h")
    )
    snap = await service.export()
    snap.endpoints[0].name = "other"
    snap.endpoints[0].settings["webhookUrl"] = "http://169.254.169.254/latest"
    with pytest.raises(SnapshotInvalid) as info:
        await service.import_(snap)
    assert "endpoint 'other': webhookUrl points to 169.254.169.254" in info.value.problems[0]
