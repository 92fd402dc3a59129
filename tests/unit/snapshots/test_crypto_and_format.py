"""The snapshot file format and the passphrase encryption of its secrets."""

from __future__ import annotations

import json

import pytest

from flowhook.snapshots import PassphraseRequired, SnapshotInvalid, WrongPassphrase, parse_snapshot
from flowhook.snapshots.crypto import EncryptedSecrets, open_secrets, seal_secrets

SECRETS = {"shop": {"webhookPassword": "pw-in-clear-123", "signingSecret": "whsec_AAAA"}}


def test_secrets_round_trip_and_are_not_readable_without_the_passphrase() -> None:
    """Sealed secrets open with the passphrase, and neither a secret nor the passphrase
    appears in the sealed form."""
    box = seal_secrets(SECRETS, "passphrase-one")
    dumped = box.model_dump_json()
    assert "pw-in-clear-123" not in dumped
    assert "passphrase-one" not in dumped
    assert open_secrets(box, "passphrase-one") == SECRETS


def test_a_wrong_passphrase_or_a_changed_ciphertext_does_not_open() -> None:
    """A wrong passphrase and a flipped ciphertext byte both raise WrongPassphrase."""
    box = seal_secrets(SECRETS, "passphrase-one")
    with pytest.raises(WrongPassphrase, match="wrong passphrase"):
        open_secrets(box, "passphrase-two")
    raw = bytearray(box.ciphertext.encode())
    raw[5] = ord("A") if raw[5] != ord("A") else ord("B")
    changed = box.model_copy(update={"ciphertext": raw.decode()})
    with pytest.raises(WrongPassphrase):
        open_secrets(changed, "passphrase-one")


def test_passphrases_are_required_and_not_too_short() -> None:
    """Sealing refuses a missing or short passphrase; opening refuses a missing one."""
    with pytest.raises(PassphraseRequired, match="at least 8"):
        seal_secrets(SECRETS, "short")
    with pytest.raises(PassphraseRequired):
        open_secrets(seal_secrets(SECRETS, "passphrase-one"), None)


def test_kdf_parameters_of_a_file_are_bounded() -> None:
    """A file asking for absurd scrypt cost is refused before any key derivation."""
    fields = seal_secrets(SECRETS, "passphrase-one").model_dump()
    with pytest.raises(ValueError, match="less than or equal"):
        EncryptedSecrets.model_validate({**fields, "n": 2**30})


def _doc(**changes: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "format": "flowhook-snapshot",
        "version": 1,
        "createdAt": "2026-01-01T00:00:00Z",
        "flowhookVersion": "0.1.0",
        "flows": [],
        "endpoints": [],
        "secrets": None,
    }
    doc.update(changes)
    return doc


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "not JSON"),
        (json.dumps({"format": "other"}).encode(), "not a flowhook snapshot"),
        (json.dumps(_doc(version=2)).encode(), "newer than this flowhook reads"),
        (json.dumps(_doc(version="1")).encode(), "must be an integer"),
        (json.dumps(_doc(endpoints=[{"settings": {}}])).encode(), "endpoints.0.name"),
    ],
)
def test_parse_names_the_problem(raw: bytes, message: str) -> None:
    """Malformed, foreign, newer and incomplete documents are refused with a message that
    names the problem."""
    with pytest.raises(SnapshotInvalid) as info:
        parse_snapshot(raw)
    assert message in info.value.message


def test_parse_reads_a_valid_document() -> None:
    """A valid document parses into flows and endpoints."""
    snap = parse_snapshot(
        json.dumps(
            _doc(
                flows=[{"file": "a.yaml", "text": "x"}],
                endpoints=[
                    {"name": "e", "settings": {"flow": "a"}, "secrets": ["webhookPassword"]}
                ],
            )
        )
    )
    assert snap.flows[0].file == "a.yaml"
    assert snap.endpoints[0].secrets == ["webhookPassword"]
