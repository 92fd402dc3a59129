"""The security commands of the CLI as real processes: signing secrets, rotation, refusals."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
FLOWHOOK = [sys.executable, "-m", "flowhook"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("FLOWHOOK_")}
    e.update(
        FLOWHOOK_DATA_DIR=str(tmp_path / "data"),
        FLOWHOOK_FLOWS_DIR=str(REPO / "flows"),
        FLOWHOOK_CONFIG="",  # not the checkout's flowhook.toml
    )
    return e


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FLOWHOOK, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def ok(env: dict[str, str], *args: str) -> Any:
    res = cli(env, *args)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_cli_signing_secret_is_shown_once_rotated_and_stored_encrypted(
    env: dict[str, str], tmp_path: Path
) -> None:
    """`endpoints create --signing` prints a whsec_ secret once, `show` never does,
    `rotate-secret` prints a new one; the SQLite file holds neither secret nor the
    password in clear, and the key file is created with mode 0600."""
    ep = ok(
        env, "endpoints", "create", "--name", "s", "--flow", "echo",
        "--webhook", "https://hooks.example.com/in", "--user", "bot",
        "--password", "correct-horse-42", "--signing",
    )  # fmt: skip
    secret = ep["signingSecret"]
    assert secret.startswith("whsec_")
    assert ep["signing"] is True
    shown = cli(env, "endpoints", "show", ep["id"])
    assert secret not in shown.stdout
    assert '"signingSecret":' not in shown.stdout
    rotated = ok(env, "endpoints", "rotate-secret", ep["id"])
    assert rotated["signingSecret"].startswith("whsec_")
    assert rotated["signingSecret"] != secret
    assert rotated["previousSecretExpiresAt"] is not None

    db = (tmp_path / "data" / "flowhook.db").read_bytes()
    for clear in (secret, rotated["signingSecret"], "correct-horse-42"):
        assert clear.encode() not in db
    assert stat.S_IMODE((tmp_path / "data" / "secret-key").stat().st_mode) == 0o600

    off = ok(env, "endpoints", "update", ep["id"], "--no-signing")
    assert off["signing"] is False


def test_cli_refuses_a_loopback_webhook_unless_allowlisted(env: dict[str, str]) -> None:
    """Without FLOWHOOK_WEBHOOK_ALLOW_CIDRS a 127.0.0.1 webhook is refused with a message
    naming the setting; with loopback allowlisted the same command succeeds."""
    args = ("endpoints", "create", "--name", "l", "--flow", "echo", "--webhook")
    res = cli(env, *args, "http://127.0.0.1:8000/hook")
    assert res.returncode == 1
    assert "FLOWHOOK_WEBHOOK_ALLOW_CIDRS" in res.stderr
    env["FLOWHOOK_WEBHOOK_ALLOW_CIDRS"] = "127.0.0.0/8,::1/128"
    assert ok(env, *args, "http://127.0.0.1:8000/hook")["webhookUrl"].startswith("http://127.")


def test_listen_refuses_a_malformed_secret(env: dict[str, str]) -> None:
    """`flowhook listen --secret` checks the secret's format before listening."""
    res = cli(env, "listen", "--port", "0", "--secret", "whsec_not base64!")
    assert res.returncode == 2
    assert "malformed signing secret" in res.stderr
    assert "not base64!" not in res.stderr
