"""flowhook.toml: read by the CLI and the server alike; the environment and flags win."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowhook.config import Settings
from flowhook.errors import ConfigError


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "flowhook.toml"
    monkeypatch.setenv("FLOWHOOK_CONFIG", str(path))
    for name in ("FLOWHOOK_PORT", "FLOWHOOK_WEBHOOK_ALLOW_CIDRS", "FLOWHOOK_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    return path


def test_the_file_sets_what_it_names(config: Path) -> None:
    """Keys of the file are the settings' names; endpointUrl's base follows its port."""
    config.write_text('port = 18080\nwebhook_allow_cidrs = ["127.0.0.0/8"]\n')
    settings = Settings()
    assert (settings.port, settings.webhook_allow_cidrs) == (18080, ["127.0.0.0/8"])
    assert settings.base_url == "http://127.0.0.1:18080"


def test_environment_then_flags_override_the_file(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FLOWHOOK_* beats the file, an explicit value (a CLI flag) beats both."""
    config.write_text("port = 18080\n")
    monkeypatch.setenv("FLOWHOOK_PORT", "19090")
    assert Settings().port == 19090
    assert Settings(port=20000).port == 20000


def test_a_typo_is_an_error_with_a_suggestion(config: Path) -> None:
    """A key that is no setting is refused (not silently ignored), with the near name."""
    config.write_text("prot = 1\n")
    with pytest.raises(ConfigError, match="'prot' is not a setting \\(did you mean 'port'\\?\\)"):
        Settings()


def test_broken_toml_names_the_file(config: Path) -> None:
    """A file that is not TOML is reported with its path and the parser's line."""
    config.write_text("port = \n")
    with pytest.raises(ConfigError, match=str(config)):
        Settings()


def test_an_empty_config_variable_reads_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FLOWHOOK_CONFIG= (empty) ignores ./flowhook.toml: tests and containers use it."""
    (tmp_path / "flowhook.toml").write_text("port = 1234\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLOWHOOK_CONFIG", "")
    monkeypatch.delenv("FLOWHOOK_PORT", raising=False)
    assert Settings().port == 8080
    monkeypatch.delenv("FLOWHOOK_CONFIG")
    assert Settings().port == 1234  # ./flowhook.toml when nothing says otherwise
