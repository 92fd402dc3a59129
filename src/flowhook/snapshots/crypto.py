"""Encrypting a snapshot's secrets with a passphrase.

The key is derived with scrypt (salt: 16 random bytes; parameters stored in the file),
the secrets are encrypted as one JSON document with AES-256-GCM (random 96-bit nonce),
bound to the snapshot format as associated data. A wrong passphrase and a changed
ciphertext both fail the GCM tag check: nothing is decrypted.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from pydantic import BaseModel, ConfigDict, Field

from flowhook.snapshots.errors import PassphraseRequired, WrongPassphrase

MIN_PASSPHRASE_CHARS = 8
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
# A file's parameters are accepted only within these bounds, so a crafted file
# cannot make an import spend unbounded memory or time.
MAX_SCRYPT_N = 2**20
MAX_SCRYPT_R = 16
MAX_SCRYPT_P = 4
ASSOCIATED_DATA = b"flowhook-snapshot/1/secrets"


class EncryptedSecrets(BaseModel):
    """The ``secrets`` member of a snapshot file."""

    model_config = ConfigDict(extra="forbid")

    kdf: str = Field(default="scrypt", pattern="^scrypt$")
    n: int = Field(default=SCRYPT_N, ge=2, le=MAX_SCRYPT_N)
    r: int = Field(default=SCRYPT_R, ge=1, le=MAX_SCRYPT_R)
    p: int = Field(default=SCRYPT_P, ge=1, le=MAX_SCRYPT_P)
    salt: str
    cipher: str = Field(default="AES-256-GCM", pattern="^AES-256-GCM$")
    nonce: str
    ciphertext: str

    def __repr__(self) -> str:
        return f"EncryptedSecrets(kdf={self.kdf!r}, cipher={self.cipher!r}, <ciphertext hidden>)"


def check_passphrase(passphrase: str | None) -> str:
    if not passphrase:
        raise PassphraseRequired(
            "secrets are encrypted with a passphrase: give one "
            "(CLI: --passphrase-env VAR; admin API: the X-Snapshot-Passphrase header)",
            field="passphrase",
            expected="a passphrase",
        )
    if len(passphrase) < MIN_PASSPHRASE_CHARS:
        raise PassphraseRequired(
            f"the passphrase must have at least {MIN_PASSPHRASE_CHARS} characters",
            field="passphrase",
            expected=f"at least {MIN_PASSPHRASE_CHARS} characters",
        )
    return passphrase


def _derive(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))


def seal_secrets(payload: dict[str, Any], passphrase: str) -> EncryptedSecrets:
    """Encrypt ``payload`` (a JSON document) with a key derived from ``passphrase``."""
    check_passphrase(passphrase)
    salt = secrets.token_bytes(16)
    nonce = secrets.token_bytes(12)
    key = _derive(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    sealed = AESGCM(key).encrypt(nonce, orjson.dumps(payload), ASSOCIATED_DATA)
    return EncryptedSecrets(salt=_b64(salt), nonce=_b64(nonce), ciphertext=_b64(sealed))


def open_secrets(box: EncryptedSecrets, passphrase: str | None) -> dict[str, Any]:
    """The decrypted payload; ``WrongPassphrase`` when it does not open."""
    if not passphrase:
        raise PassphraseRequired(
            "this snapshot carries encrypted secrets: give its passphrase "
            "(CLI: --passphrase-env VAR; admin API: the X-Snapshot-Passphrase header)",
            field="passphrase",
            expected="the passphrase the snapshot was exported with",
        )
    if box.n & (box.n - 1):
        raise WrongPassphrase("the snapshot's secrets are damaged (scrypt n is not a power of 2)")
    try:
        salt, nonce, sealed = _unb64(box.salt), _unb64(box.nonce), _unb64(box.ciphertext)
        key = _derive(passphrase, salt, box.n, box.r, box.p)
        plain = AESGCM(key).decrypt(nonce, sealed, ASSOCIATED_DATA)
        payload = orjson.loads(plain)
    except (InvalidTag, ValueError, binascii.Error, orjson.JSONDecodeError):
        raise WrongPassphrase(
            "the passphrase does not open this snapshot's secrets "
            "(wrong passphrase, or the file was changed)"
        ) from None
    if not isinstance(payload, dict):
        raise WrongPassphrase("the snapshot's secrets are damaged")
    return payload


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text.encode("ascii"))
