"""Secrets at rest: webhook passwords and signing secrets are stored encrypted.

AES-256-GCM with a random 96-bit nonce per value. The master key comes from
``FLOWHOOK_SECRET_KEY`` (base64 of 32 bytes) or, when that is not set, from the
key file ``<data dir>/secret-key``, created with mode 0600 on first start.

Each ciphertext is bound to where it is stored (endpoint id and column) as
associated data, so a value copied into another row or column does not decrypt.
Stored form: ``v1:`` + urlsafe base64 of nonce + ciphertext + tag.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_FILE = "secret-key"
KEY_BYTES = 32
NONCE_BYTES = 12
PREFIX = "v1:"


class SecretKeyError(ValueError):
    """The master key is malformed or missing (the message never contains key material)."""


class UnreadableSecret(ValueError):
    """A stored secret does not decrypt: wrong master key, or the value was tampered with."""


def decode_key(text: str) -> bytes:
    """The 32-byte key from its base64 (standard or urlsafe) text form."""
    cleaned = text.strip()
    try:
        key = base64.urlsafe_b64decode(cleaned.replace("+", "-").replace("/", "_"))
    except (binascii.Error, ValueError):
        raise SecretKeyError("the secret key must be base64 of 32 bytes") from None
    if len(key) != KEY_BYTES:
        raise SecretKeyError(f"the secret key must be base64 of {KEY_BYTES} bytes")
    return key


def new_key_text() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def load_or_create_key(configured: str | None, data_dir: Path) -> bytes:
    """The master key: ``configured`` if given, else the data dir's key file (made once)."""
    if configured:
        return decode_key(configured)
    path = data_dir / KEY_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL + 0600 from the start: never a moment where others could read it,
        # and two processes starting together cannot both write a key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return decode_key(path.read_text())
    with os.fdopen(fd, "w") as fh:
        fh.write(new_key_text() + "\n")
    return decode_key(path.read_text())


class SecretBox:
    """Encrypts and decrypts stored secrets with the master key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise SecretKeyError(f"the secret key must be {KEY_BYTES} bytes")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"

    def seal(self, plaintext: str, context: str) -> str:
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), context.encode("utf-8"))
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def open(self, stored: str, context: str) -> str:
        if not stored.startswith(PREFIX):
            raise UnreadableSecret("stored secret is not in the encrypted format")
        try:
            raw = base64.urlsafe_b64decode(stored[len(PREFIX) :])
            plain = self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode())
        except (binascii.Error, ValueError, InvalidTag):
            raise UnreadableSecret(
                "stored secret does not decrypt (was FLOWHOOK_SECRET_KEY or the key file changed?)"
            ) from None
        return plain.decode("utf-8")
