"""Stored secrets: AES-GCM sealing, binding to where they are stored, and the master key."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from flowhook.endpoints.vault import (
    KEY_FILE,
    SecretBox,
    SecretKeyError,
    UnreadableSecret,
    load_or_create_key,
    new_key_text,
)

KEY = bytes(range(32))


def test_seal_hides_the_secret_and_open_restores_it() -> None:
    """A sealed value contains nothing of the plaintext, differs every time (random nonce)
    and opens back to the exact plaintext."""
    box = SecretBox(KEY)
    first = box.seal("hunter2-päss", "ep-1:webhook_password")
    second = box.seal("hunter2-päss", "ep-1:webhook_password")
    assert first != second
    assert "hunter2" not in first
    assert first.startswith("v1:")
    assert box.open(first, "ep-1:webhook_password") == "hunter2-päss"


@pytest.mark.parametrize("context", ["ep-2:webhook_password", "ep-1:signing_secret"])
def test_a_sealed_value_only_opens_where_it_was_stored(context: str) -> None:
    """A value copied to another endpoint's row or another column does not decrypt."""
    box = SecretBox(KEY)
    sealed = box.seal("s3cret", "ep-1:webhook_password")
    with pytest.raises(UnreadableSecret):
        box.open(sealed, context)


def test_wrong_key_or_tampering_is_detected() -> None:
    """Another master key, a flipped byte, or a plaintext value all fail with a message
    that names the likely cause and nothing of the secret."""
    sealed = SecretBox(KEY).seal("s3cret", "c")
    with pytest.raises(UnreadableSecret, match="FLOWHOOK_SECRET_KEY"):
        SecretBox(bytes(32)).open(sealed, "c")
    raw = bytearray(base64.urlsafe_b64decode(sealed[3:]))
    raw[-1] ^= 1
    with pytest.raises(UnreadableSecret):
        SecretBox(KEY).open("v1:" + base64.urlsafe_b64encode(bytes(raw)).decode(), "c")
    with pytest.raises(UnreadableSecret, match="not in the encrypted format"):
        SecretBox(KEY).open("s3cret", "c")


def test_key_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    """Without FLOWHOOK_SECRET_KEY a 32-byte key is generated into the data dir with mode
    0600 on first start and the same key is read on every later start."""
    data = tmp_path / "data"
    key = load_or_create_key(None, data)
    path = data / KEY_FILE
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(None, data) == key


def test_configured_key_wins_and_no_key_file_is_written(tmp_path: Path) -> None:
    """FLOWHOOK_SECRET_KEY (base64 of 32 bytes) is used as is; no key file appears."""
    text = new_key_text()
    assert load_or_create_key(text, tmp_path) == base64.urlsafe_b64decode(text)
    assert not (tmp_path / KEY_FILE).exists()
    standard = base64.b64encode(KEY).decode()
    assert load_or_create_key(standard, tmp_path) == KEY


def test_malformed_key_is_refused_without_echoing_it(tmp_path: Path) -> None:
    """A key of the wrong length fails clearly, and the error does not contain the key."""
    short = base64.b64encode(b"x" * 16).decode()
    with pytest.raises(SecretKeyError) as info:
        load_or_create_key(short, tmp_path)
    assert short not in str(info.value)
    assert "32 bytes" in str(info.value)


def test_key_file_is_never_world_readable_even_with_a_lax_umask(tmp_path: Path) -> None:
    """The key file is created 0600 regardless of the process umask."""
    old = os.umask(0)
    try:
        load_or_create_key(None, tmp_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600
