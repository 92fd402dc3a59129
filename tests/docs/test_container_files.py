"""The Dockerfile and compose.yaml agree with the code. Docker does not run here, so
they are read: every FLOWHOOK_* name is a setting, every command a flowhook command,
the port the server's, the copied paths exist, the database URL the compose database."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from flowhook.config import Settings
from tests.docs.checks import check_flowhook_command, unknown_variables
from tests.docs.markdown import REPO

DOCKERFILE = (REPO / "Dockerfile").read_text()
COMPOSE: dict[str, Any] = yaml.safe_load((REPO / "compose.yaml").read_text())


def _instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    found = []
    for line in joined.splitlines():
        if line.strip() and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def test_dockerfile_names_only_real_settings_and_paths() -> None:
    """ENV sets existing settings to valid values; COPY takes paths of the repository;
    EXPOSE is the server's default port; CMD is a flowhook command; the base image's
    Python is one the package supports."""
    assert not unknown_variables(DOCKERFILE)
    env: dict[str, str] = {}
    for keyword, rest in _instructions():
        if keyword == "ENV":
            env.update(dict(re.findall(r"(FLOWHOOK_\w+)=(\S*)", rest)))
        elif keyword == "COPY":
            *sources, _target = rest.split()
            for source in sources:
                assert (REPO / source).exists(), source
        elif keyword == "EXPOSE":
            assert int(rest) == Settings.model_fields["port"].default
        elif keyword == "CMD":
            argv = eval(rest)  # noqa: S307 - the JSON-array form of CMD
            assert argv[0] == "flowhook"
            assert not check_flowhook_command(argv[1:])
        elif keyword == "FROM":
            version = re.search(r"python:(\d+)\.(\d+)", rest)
            assert version is not None
            required = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
            low = re.search(r">=(\d+)\.(\d+)", required["requires-python"])
            assert low is not None
            assert (int(version[1]), int(version[2])) >= (int(low[1]), int(low[2]))
    settings: dict[str, Any] = {k.removeprefix("FLOWHOOK_").lower(): v for k, v in env.items() if v}
    parsed = Settings(**settings)  # every value is valid for its setting
    assert parsed.host == "0.0.0.0"
    assert env["FLOWHOOK_CONFIG"] == ""  # configured by the environment only


def test_compose_runs_flowhook_on_its_postgres() -> None:
    """The flowhook service runs a real command with real settings, waits for the
    PostgreSQL service to be healthy, and its database URL names that service, user
    and database; the published port is the one the server listens on."""
    services = COMPOSE["services"]
    assert set(services) == {"postgres", "flowhook"}
    flowhook, postgres = services["flowhook"], services["postgres"]
    assert not unknown_variables((REPO / "compose.yaml").read_text())
    assert flowhook["command"][0] == "flowhook"
    assert not check_flowhook_command(flowhook["command"][1:])
    assert flowhook["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "pg_isready" in postgres["healthcheck"]["test"]
    url = flowhook["environment"]["FLOWHOOK_DATABASE_URL"]
    pg = postgres["environment"]
    match = re.fullmatch(r"postgresql://(\w+):.+@postgres:5432/(\w+)", url)
    assert match is not None, url
    assert (match[1], match[2]) == (pg["POSTGRES_USER"], pg["POSTGRES_DB"])
    published = flowhook["ports"][0].rsplit(":", 1)[1]
    assert int(published) == Settings.model_fields["port"].default
    data_dir = re.search(r"FLOWHOOK_DATA_DIR=(\S+)", DOCKERFILE)
    assert data_dir is not None
    assert any(v.endswith(":" + data_dir[1]) for v in flowhook["volumes"])
    assert flowhook["build"] == "."
    assert Path(REPO / "Dockerfile").is_file()
