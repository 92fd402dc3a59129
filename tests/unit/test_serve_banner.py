"""The start-up banner tells a new user everything, without spilling the token into logs."""

from __future__ import annotations

from pathlib import Path

from flowhook.cli.serve import banner
from flowhook.config import Settings


def settings(tmp_path: Path, token: str | None = None) -> Settings:
    return Settings(data_dir=tmp_path, port=9123, admin_token=token)


def test_generated_token_is_shown_in_full_with_its_file(tmp_path: Path) -> None:
    """On a terminal, a token generated at this start is printed whole, with where it is
    stored."""
    text = banner(settings(tmp_path), "fha_secret_value", True, ["echo"], on_terminal=True)
    assert "fha_secret_value" in text
    assert str(tmp_path / "admin-token") in text
    assert "http://127.0.0.1:9123/api/v1" in text
    assert "http://127.0.0.1:9123/docs" in text
    assert "curl -s -X POST http://127.0.0.1:9123/api/v1/endpoints" in text


def test_known_token_is_masked_when_output_is_not_a_terminal(tmp_path: Path) -> None:
    """A token from an earlier start is masked when stderr is not a terminal (e.g. a log)."""
    text = banner(settings(tmp_path), "fha_secret_value", False, ["echo"], on_terminal=False)
    assert "fha_secret_value" not in text
    assert "fha_secr…" in text
    shown = banner(settings(tmp_path), "fha_secret_value", False, ["echo"], on_terminal=True)
    assert "fha_secret_value" in shown


def test_token_from_the_environment_names_its_source(tmp_path: Path) -> None:
    """When the token comes from FLOWHOOK_ADMIN_TOKEN the banner says so."""
    text = banner(settings(tmp_path, "fha_env"), "fha_env", False, ["echo"], on_terminal=True)
    assert "from FLOWHOOK_ADMIN_TOKEN" in text


def test_generated_token_is_masked_when_output_is_not_a_terminal(tmp_path: Path) -> None:
    """A token generated at this start is not written in full when stderr is not a
    terminal (it would land in log collectors); the banner names the file to read."""
    text = banner(settings(tmp_path), "fha_secret_value", True, ["echo"], on_terminal=False)
    assert "fha_secret_value" not in text
    assert "fha_secr…" in text
    assert f"read it in {tmp_path / 'admin-token'}" in text
