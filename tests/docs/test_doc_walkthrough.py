"""The README's walkthrough and docs/endpoints.md's examples, run as a newcomer runs them.

A scratch checkout (the repository's flows, examples and flowhook.toml, and
``.venv/bin/flowhook``) with a real ``flowhook serve`` and ``flowhook listen``; every
block marked ``<!-- doctest: walkthrough -->`` is run command by command with bash,
in document order. The documented ports become free ones and the documented ids the
real ones; a JSON block after a command must have the keys of its real answer; what
the listener is said to print must arrive.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.docs.markdown import REPO, Block, blocks_of, shell_commands
from tests.support.processes import Proc, free_port, start, wait_for_line

README_ID = "77372955-54cc-42cb-8301-93012f0f76fc"
README_TOKEN = "vrqGMfE5nDjPKxoimj6VH46H3cZlU9CQ"


class Walk:
    """One newcomer's terminal: the checkout, the servers, what the commands printed."""

    def __init__(self, root: Path, server_port: int, listen_port: int) -> None:
        self.root = root
        self.server_port = server_port
        self.listen_port = listen_port
        self.replace: dict[str, str] = {
            "127.0.0.1:8080": f"127.0.0.1:{server_port}",
            "127.0.0.1:8000": f"127.0.0.1:{listen_port}",
        }
        self.assignments: list[str] = []
        self.last: str = ""
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith("FLOWHOOK_")
        }  # the checkout's flowhook.toml, as for a person

    def substitute(self, text: str) -> str:
        for documented, real in self.replace.items():
            text = text.replace(documented, real)
        return text

    def run(self, command: str) -> str:
        command = self.substitute(command)
        script = "\n".join([*self.assignments, command])
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, (command, done.stdout, done.stderr)
        if re.fullmatch(r"[A-Z_]+=.+", command) and "\n" not in command:
            self.assignments.append(command)
        if done.stdout.startswith("{"):  # curl -s answers; a refusal is a failed example
            assert '"error"' not in done.stdout, (command, done.stdout)
        self.last = done.stdout
        self._learn(done.stdout)
        return done.stdout

    def _learn(self, printed: str) -> None:
        """Map the documented ids to the ones this run got."""
        try:
            answer = json.loads(printed)
        except json.JSONDecodeError:
            return
        if isinstance(answer, dict) and "urlToken" in answer and README_ID not in self.replace:
            self.replace[README_ID] = answer["id"]
            self.replace[README_TOKEN] = answer["urlToken"]
        if isinstance(answer, dict) and str(answer.get("key", "")).startswith("fhk_"):
            self.replace["fhk_..."] = answer["key"]


def _checkout(tmp_path: Path) -> Path:
    root = tmp_path / "flowhook"
    shutil.copytree(REPO / "flows", root / "flows")
    shutil.copytree(REPO / "examples", root / "examples")
    shutil.copy(REPO / "flowhook.toml", root / "flowhook.toml")
    (root / ".venv" / "bin").mkdir(parents=True)
    (root / ".venv" / "bin" / "flowhook").symlink_to(Path(sys.executable).parent / "flowhook")
    return root


def _wait_ready(port: int, proc: Proc) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2):
                return
        except OSError:
            assert proc.popen.poll() is None, proc.output()
            time.sleep(0.1)
    raise AssertionError(proc.output())


def _keys(value: Any) -> Any:
    return sorted(value) if isinstance(value, dict) else type(value).__name__


def _walk(walk: Walk, blocks: list[Block], listener: Proc) -> None:
    for block in blocks:
        if block.lang == "json":  # the answer of the command before it
            documented = json.loads(block.text)
            assert _keys(json.loads(walk.last)) == _keys(documented), block.where
            continue
        if block.lang == "" and block.text.startswith("---"):  # what the listener prints
            body = json.loads(block.text.split("\n", 1)[1])
            wait_for_line(listener, body["AIOutput"]["text"], timeout=20)
            continue
        for command in shell_commands(block.text):
            if command.startswith(("./dev serve", ".venv/bin/flowhook listen")):
                continue  # running already, on free ports
            walk.run(command)
        for said in re.findall(r'# webhook: "(.*)"', block.text):
            wait_for_line(listener, said, timeout=20)


def test_readme_and_endpoints_examples_run_as_written(tmp_path: Path) -> None:
    """From a fresh checkout, the README's commands create an endpoint, send the
    reference's message and hold the conversation (the listener prints each answer the
    README shows), switch to API keys; then docs/endpoints.md's inject, notify and
    transformer examples run against the same server."""
    root = _checkout(tmp_path)
    server_port, listen_port = free_port(), free_port()
    walk = Walk(root, server_port, listen_port)

    def in_checkout(command: str) -> list[str]:
        return ["bash", "-c", f"cd {root} && exec .venv/bin/flowhook {command}"]

    server = start(in_checkout(f"serve --port {server_port}"), walk.env)
    listener = start(in_checkout(f"listen --port {listen_port}"), walk.env)
    try:
        _wait_ready(server_port, server)
        wait_for_line(listener, "listening on", timeout=20)
        # The server reads the checkout's flowhook.toml: loopback webhooks are allowed.
        readme = [b for b in blocks_of(REPO / "README.md") if b.kind == "walkthrough"]
        endpoints = [
            b for b in blocks_of(REPO / "docs" / "endpoints.md") if b.kind == "walkthrough"
        ]
        assert len(readme) >= 8
        assert endpoints
        _walk(walk, readme, listener)
        assert listener.output().count("listening on") == 1  # printed once
        # docs/endpoints.md speaks of an endpoint $ENDPOINT_URL that uses no API keys.
        created = walk.run(
            "curl -s -X POST http://127.0.0.1:8080/api/v1/endpoints -H 'Authorization: "
            "Bearer '$TOKEN -H 'Content-Type: application/json' -d '{\"name\": \"docs\", "
            '"flow": "echo", "webhookUrl": "http://127.0.0.1:8000/hook"}\''
        )
        walk.assignments.append(f"ENDPOINT_URL={json.loads(created)['endpointUrl']}")
        _walk(walk, endpoints, listener)
        wait_for_line(listener, "Your parcel has shipped", timeout=20)
    finally:
        server.stop()
        listener.stop()
    assert "message accepted" in server.output()  # one info line per message
    assert "delivery delivered" in server.output()
