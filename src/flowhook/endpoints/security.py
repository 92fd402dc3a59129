"""What an endpoint's secrets and webhook URL must pass: encryption at rest, SSRF guard,
signing-secret rotation. Built once from Settings and shared by the service and delivery."""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import urlsplit

from flowhook.config import Settings
from flowhook.delivery.ssrf import ALLOWLIST_SETTING, AddressGuard, BlockedAddressError
from flowhook.delivery.types import WebhookTarget
from flowhook.endpoints.vault import SecretBox, load_or_create_key
from flowhook.errors import InvalidRequest
from flowhook.storage.records import EndpointRecord

# Associated data of each kind of stored secret (with the endpoint id): a value
# copied into another endpoint's row, or into the other kind's column, won't decrypt.
PASSWORD = "webhook_password"  # noqa: S105 - a label, not a secret
SIGNING = "signing_secret"


@dataclass(frozen=True)
class EndpointSecurity:
    box: SecretBox
    guard: AddressGuard
    grace_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> EndpointSecurity:
        key = load_or_create_key(
            settings.secret_key.get_secret_value() if settings.secret_key else None,
            settings.data_dir,
        )
        return cls(
            SecretBox(key),
            AddressGuard(settings.webhook_allow_cidrs, allow_public=settings.outbound_public),
            settings.signing_secret_grace_seconds,
        )

    def check_webhook_url(self, url: str) -> None:
        """Refuse a URL whose host is an IP literal in a blocked range (400, webhookUrl).

        Host names are checked when deliveries connect, after DNS resolution.
        """
        host = urlsplit(url).hostname or ""
        try:
            self.guard.check_host(host)
        except BlockedAddressError:
            raise InvalidRequest(
                f"webhookUrl points to {host}, a loopback, private, link-local, multicast "
                f"or reserved address that webhooks may not reach; to allow it (for local "
                f"development) add its network to the {ALLOWLIST_SETTING} setting",
                field="webhookUrl",
                expected="a public address, or one in the allowlist",
            ) from None

    def seal(self, endpoint_id: str, kind: str, plaintext: str) -> str:
        return self.box.seal(plaintext, f"{endpoint_id}:{kind}")

    def unseal(self, endpoint_id: str, kind: str, stored: str) -> str:
        return self.box.open(stored, f"{endpoint_id}:{kind}")

    def signing_secrets(self, rec: EndpointRecord, now: float) -> tuple[str, ...]:
        """The secrets that sign deliveries now: the current one, and the previous one
        during the grace period after a rotation."""
        out: list[str] = []
        if rec.signing_secret:
            out.append(self.unseal(rec.id, SIGNING, rec.signing_secret))
        rotated = rec.signing_secret_rotated_at
        if (
            rec.previous_signing_secret
            and rotated is not None
            and now < rotated + self.grace_seconds
        ):
            out.append(self.unseal(rec.id, SIGNING, rec.previous_signing_secret))
        return tuple(out)

    def signing_set_until(self, rec: EndpointRecord, now: float) -> float:
        """Until when ``signing_secrets(rec, ...)`` stays what it is at ``now``: the end
        of a rotation's grace period, if one runs; otherwise for ever."""
        rotated = rec.signing_secret_rotated_at
        if rec.previous_signing_secret and rotated is not None:
            ends = rotated + self.grace_seconds
            if now < ends:
                return ends
        return math.inf

    def target(self, rec: EndpointRecord, now: float) -> WebhookTarget:
        """Where and how delivery POSTs this endpoint's outputs (secrets decrypted)."""
        password = (
            None
            if rec.webhook_password is None
            else self.unseal(rec.id, PASSWORD, rec.webhook_password)
        )
        return WebhookTarget(
            rec.webhook_url,
            rec.webhook_user,
            password,
            signing_secrets=self.signing_secrets(rec, now),
        )
