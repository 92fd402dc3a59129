"""The delivery target resolver keeps what it built per stored record, and nothing longer.

Real storage (SQLite and PostgreSQL): changes are written by a service of their own, with
no cache of ours told about them, the way the CLI or another process makes them.
"""

from __future__ import annotations

import secrets

from flowhook.delivery.ssrf import AddressGuard
from flowhook.endpoints.cache import EndpointCache
from flowhook.endpoints.generation import ConfigGeneration
from flowhook.endpoints.models import EndpointCreate, EndpointUpdate
from flowhook.endpoints.security import EndpointSecurity
from flowhook.endpoints.service import EndpointService
from flowhook.endpoints.targets import WebhookTargets
from flowhook.endpoints.vault import SecretBox
from flowhook.storage.store import SqlStore

GRACE = 60.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def setup(store: SqlStore, clock: Clock) -> tuple[WebhookTargets, EndpointService]:
    security = EndpointSecurity(
        SecretBox(secrets.token_bytes(32)), AddressGuard(["127.0.0.0/8"]), GRACE
    )
    cache = EndpointCache(store, ttl=3600.0)  # long: only a generation change may clear it
    targets = WebhookTargets(ConfigGeneration(store, cache), cache, security, clock=clock)
    # Another tool: its own service and cache, so ours learns of changes only from storage.
    other = EndpointService(
        store, flow_exists=lambda _n: True, base_url="http://x", security=security
    )
    return targets, other


async def test_target_is_kept_while_the_record_is_unchanged_and_rebuilt_after_a_change(
    store: SqlStore,
) -> None:
    """Two attempts with nothing changed get the very same target object (secrets are not
    decrypted again); a password changed by another tool is in the next attempt's target."""
    clock = Clock(1_000.0)
    targets, other = setup(store, clock)
    created = await other.create(
        EndpointCreate(
            name="e",
            flow="f",
            webhook_url="http://127.0.0.1:1/h",
            webhook_user="bot",
            webhook_password="first",
        )
    )
    first = await targets(created.id)
    assert first is not None
    assert first.password == "first"
    assert await targets(created.id) is first

    await other.update(created.id, EndpointUpdate(webhook_password="second"))
    second = await targets(created.id)
    assert second is not None
    assert second.password == "second"
    assert second is not first


async def test_previous_signing_secret_stops_signing_when_its_grace_period_ends(
    store: SqlStore,
) -> None:
    """After a rotation both secrets sign; once the grace period is over, with no change
    stored meanwhile, the kept target is rebuilt and only the new secret signs."""
    clock = Clock(1_000.0)
    targets, other = setup(store, clock)
    created = await other.create(
        EndpointCreate(name="e", flow="f", webhook_url="http://127.0.0.1:1/h", signing=True)
    )
    rotated = await other.rotate_signing_secret(created.id)
    clock.now = rotated.rotated_at.timestamp() + 1.0

    during = await targets(created.id)
    assert during is not None
    assert created.signing_secret is not None
    assert during.signing_secrets == (rotated.signing_secret, created.signing_secret)
    assert await targets(created.id) is during

    clock.now += GRACE
    after = await targets(created.id)
    assert after is not None
    assert after.signing_secrets == (rotated.signing_secret,)


async def test_deleted_endpoint_resolves_to_none(store: SqlStore) -> None:
    """An endpoint deleted by another tool resolves to None at the next attempt, although
    a target of it was kept."""
    clock = Clock(1_000.0)
    targets, other = setup(store, clock)
    created = await other.create(
        EndpointCreate(name="e", flow="f", webhook_url="http://127.0.0.1:1/h")
    )
    assert await targets(created.id) is not None
    await other.delete(created.id)
    assert await targets(created.id) is None
