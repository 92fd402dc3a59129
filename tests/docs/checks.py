"""What a documented example must agree with: the CLI's commands and options, the
settings' names, the OpenAPI document's paths, the flow loader, the bench's options."""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import typer.main

from flowhook.cli.main import app as cli_app
from flowhook.config import CONFIG_ENV, Settings
from tests.docs.markdown import REPO, words

# Variables read by something other than Settings: the config file's location, the
# listener's signing secret, and where the browser tests save screenshots.
OTHER_VARIABLES = {CONFIG_ENV, "FLOWHOOK_LISTEN_SECRET", "FLOWHOOK_SCREENSHOTS"}
_VARIABLE = re.compile(r"\bFLOWHOOK_[A-Z0-9_]+\b")


def unknown_variables(text: str) -> list[str]:
    """FLOWHOOK_* names in ``text`` that no setting (or other documented variable) has."""
    fields = {f"FLOWHOOK_{name.upper()}" for name in Settings.model_fields}
    return sorted(
        {name for name in _VARIABLE.findall(text) if name not in fields | OTHER_VARIABLES}
    )


# typer's command objects (click's, vendored or not): a group has ``commands``.
Command = Any


@functools.cache
def _root() -> Command:
    return typer.main.get_command(cli_app)


def _is_group(command: Command) -> bool:
    return hasattr(command, "commands")


def _options(command: Command) -> set[str]:
    names = {"--help"}
    for param in command.params:
        names.update(o for o in getattr(param, "opts", []) if o.startswith("-"))
        names.update(getattr(param, "secondary_opts", []))
    return names


def check_flowhook_command(argv: list[str]) -> list[str]:
    """Problems of one ``flowhook ...`` command line (also a usage synopsis, with
    ``[--opt X]`` and ``a | b`` alternatives): every subcommand and option must exist."""
    problems: list[str] = []
    segments: list[list[str]] = [[]]
    for word in argv:
        if word == "|":
            segments.append([])
        else:
            segments[-1].append(word)
    parent: Command = _root()
    for index, segment in enumerate(segments):
        command: Command = _root() if index == 0 else parent
        for word in segment:
            token = word.strip("[]").split("=", 1)[0].split("/", 1)[0]
            if _is_group(command) and token in command.commands:
                parent = command
                command = command.commands[token]
            elif token.startswith("--"):
                known = _options(command) | (_options(_root()) if command is not _root() else set())
                if token not in known:
                    problems.append(f"{command.name}: no option {token}")
            elif _is_group(command) and re.fullmatch(r"[a-z][a-z-]+", token):
                problems.append(f"{command.name}: no command {token!r}")
    return problems


@functools.cache
def _bench_help(sub: str) -> str:
    run = subprocess.run(
        [sys.executable, "-m", "bench", sub, "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    return run.stdout if run.returncode == 0 else ""


def check_bench_command(argv: list[str]) -> list[str]:
    """``python -m bench SUB --opt ...``: the subcommand and its options exist."""
    rest = argv[argv.index("bench") + 1 :]
    if not rest:
        return []
    usage = _bench_help(rest[0])
    if not usage:
        return [f"bench has no command {rest[0]!r}"]
    return [
        f"bench {rest[0]}: no option {word}"
        for word in rest[1:]
        if word.startswith("--") and not re.search(rf"{re.escape(word)}\b", usage)
    ]


@functools.cache
def openapi_paths() -> dict[str, set[str]]:
    from flowhook.http.app import create_app
    from flowhook.services import build_services

    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(data_dir=Path(scratch), flows_dir=REPO / "flows", admin_token="x")
        app: Any = create_app(build_services(settings))
        doc = app.app.openapi()
    return {path: {m.upper() for m in item} for path, item in doc["paths"].items()}


def _route_of(path: str) -> str | None:
    for template in openapi_paths():
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path):
            return template
    return None


def check_curl_command(argv: list[str]) -> list[str]:
    """``curl`` against flowhook: the method and path exist in the OpenAPI document, and a
    ``-d`` body is JSON."""
    method, url, body = "GET", None, None
    words_iter = iter(argv[1:])
    for word in words_iter:
        if word == "-X":
            method = next(words_iter)
        elif word in ("-d", "--data", "--data-binary"):
            body = next(words_iter)
            method = "POST" if method == "GET" else method
        elif word in ("-H", "-o", "-u"):
            next(words_iter)
        elif word.startswith("http") or word.startswith("$"):
            url = word
    if url is None:
        return ["curl without a URL"]
    path = re.sub(r"^(https?://[^/]+|\$\{?\w+\}?)", "", url).split("?")[0]
    path = re.sub(r"\$\{?(\w+)\}?", "x", path) or "/"
    if url.startswith("$ENDPOINT_URL"):
        path = "/endpoint/x" + path
    problems = []
    route = _route_of(path)
    if route is None:
        problems.append(f"no route {path}")
    elif method not in openapi_paths()[route]:
        problems.append(f"{route} has no {method}")
    if body is not None and not body.startswith("@"):
        try:
            json.loads(body)
        except json.JSONDecodeError as exc:
            problems.append(f"-d is not JSON: {exc}")
    return problems


def check_shell(commands: Iterable[str]) -> tuple[int, list[str]]:
    """(how many commands were checked, their problems)."""
    checked, problems = 0, []
    for command in commands:
        argv = words(command)
        while argv and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", argv[0]):
            argv = argv[1:]  # VAR=value before the command
        if not argv:
            checked += 1  # an assignment: its names are checked with the text
            continue
        program = argv[0].rsplit("/", 1)[-1]
        if program == "flowhook":
            checked += 1
            problems += check_flowhook_command(argv[1:])
        elif program == "curl":
            checked += 1
            problems += check_curl_command(argv)
        elif program.startswith("python") and argv[1:2] == ["-c"]:
            checked += 1
            if "flowhook.cli.main import app" in argv[2]:  # the CLI, from another src/
                problems += check_flowhook_command(argv[3:])
            elif len(argv) == 3:  # a one-liner (making a secret): it must run
                done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
                if done.returncode != 0:
                    problems.append(f"{command!r} fails: {done.stderr[-500:]}")
        elif "-m" in argv and "bench" in argv:
            checked += 1
            problems += check_bench_command(argv)
    return checked, problems


def unknown_metrics(text: str) -> list[str]:
    """flowhook_* metric names in ``text`` that no code defines (as a Prometheus
    counter, gauge, histogram or metric family)."""
    defined = set()
    for path in (REPO / "src" / "flowhook").rglob("*.py"):
        defined.update(
            re.findall(
                r"(?:Counter|Gauge|Histogram|Summary|MetricFamily|expose)\(\s*\"(flowhook_\w+)\"",
                path.read_text(),
            )
        )
    suffixes = ("_total", "_bucket", "_count", "_sum", "_created")
    return sorted(
        name
        for name in set(re.findall(r"\bflowhook_\w+", text))
        if name not in defined and not any(name.removesuffix(x) in defined for x in suffixes)
    )
