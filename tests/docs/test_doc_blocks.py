"""Every fenced block of README.md and docs/*.md is checked against the code, so the docs
cannot drift: shell commands against the CLI, the OpenAPI paths and the bench; flows
against the loader; JSON by parsing; Python by running; files against the repository;
FLOWHOOK_* names against the settings. A block nothing can check here says why in a
``<!-- doctest: skip: reason -->`` comment. The README walkthrough and the endpoints
examples also run live (test_doc_walkthrough.py)."""

from __future__ import annotations

import ast
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from flowhook.flows.loader import FlowSource, load_sources
from tests.docs.checks import check_shell, unknown_metrics, unknown_variables
from tests.docs.markdown import REPO, Block, all_blocks, shell_commands

BLOCKS = all_blocks()
# Problems a lone node or a fragment of a flow has because the rest of its flow is not
# shown: its targets, its callers, the flow's intents and code files are elsewhere.
_OUT_OF_CONTEXT = (
    "does not exist",
    "is unreachable",
    "has no node",
    "needs 'intents' declared",
    "cannot load",
)


def _flow_problems(block: Block) -> list[str]:
    doc = yaml.safe_load(block.text)
    text = block.text
    fragment = not (isinstance(doc, dict) and "nodes" in doc)
    if fragment:
        if isinstance(doc, dict) and "intents" in doc:
            text = block.text + "nodes:\n  start: {type: end}\n"
        else:  # one or more nodes, as they appear under `nodes:`
            text = "nodes:\n" + "".join(f"  {line}\n" for line in block.text.splitlines())
    source = FlowSource(block.where, "doc", text, str(REPO / "flows" / "doc.yaml"))
    problems = load_sources([source])[1]
    if fragment:
        problems = [p for p in problems if not any(s in p for s in _OUT_OF_CONTEXT)]
    return problems


def _run_python(block: Block) -> None:
    """Run a Python example: in the repository (it names flows/), with top-level await."""
    namespace: dict[str, Any] = {}
    if "standardwebhooks" in block.text:
        namespace.update(_signed_request())
        code = block.text.replace('"whsec_..."', "secret")
    else:
        code = block.text
    compiled = compile(code, block.where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    cwd = Path.cwd()
    os.chdir(REPO)
    try:
        result = eval(compiled, namespace)  # noqa: S307 - the repository's own docs
        if asyncio.iscoroutine(result):
            asyncio.run(result)
    finally:
        os.chdir(cwd)
    if "def quote" in block.text:  # the code node example: call it as a node would
        assert namespace["quote"]({}, {"quantity": 20}, {}) == {
            "context": {"total": 190.0},
            "next": "expensive",
        }


def _signed_request() -> dict[str, Any]:
    from flowhook.delivery.signing import new_signing_secret, signature_headers

    secret = new_signing_secret()
    body = b'{"userId":"u"}'
    headers = {"webhook-id": "msg_1", **signature_headers((secret,), "msg_1", body, time.time())}
    return {"secret": secret, "raw_body_bytes": body, "request_headers": headers}


def _session_dir(doc: str) -> Path:
    """A scratch checkout for one document's sessions: the repository's flows and
    examples, plus every ``fixture`` block of the document written where it says."""
    root = Path(tempfile.mkdtemp(prefix="doc-session-"))
    shutil.copytree(REPO / "flows", root / "flows")
    shutil.copytree(REPO / "examples", root / "examples")
    for fixture in (b for b in BLOCKS if b.doc == doc and b.kind == "fixture"):
        (root / fixture.argument).parent.mkdir(parents=True, exist_ok=True)
        (root / fixture.argument).write_text(fixture.text)
    return root


def _run_session(block: Block) -> None:
    """Run each ``$ command`` of the block and compare what it prints with the lines
    after it (a line ``...`` ends the comparison of that command's output)."""
    root = _session_dir(block.doc)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "FLOWHOOK_CONFIG": "",
        "FLOWHOOK_DATA_DIR": str(root / ".flowhook"),
    }
    steps: list[tuple[str, list[str]]] = []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps:
            steps[-1][1].append(line.rstrip())
    assert steps, f"{block.where}: a session needs '$ command' lines"
    for command, expected in steps:
        run = subprocess.run(
            ["bash", "-c", command],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        printed = [line.rstrip() for line in run.stdout.splitlines()]
        if "..." in expected:
            expected = expected[: expected.index("...")]
            printed = printed[: len(expected)]
        assert printed == expected, (block.where, command, run.stderr[-2000:])
    shutil.rmtree(root, ignore_errors=True)


def check(block: Block) -> str:
    """Check one block; returns how it was checked (fails the test on a problem)."""
    assert not unknown_variables(block.text), (block.where, unknown_variables(block.text))
    if block.kind == "skip":
        assert block.argument, f"{block.where}: a skipped example needs its reason"
        return "skipped"
    if block.kind == "fixture":  # written for the document's sessions; a flow must parse
        yaml.safe_load(block.text)
        return "fixture"
    if block.kind == "metrics":  # alert rules, dashboards: the series must exist
        assert "flowhook_" in block.text
        assert not unknown_metrics(block.text), (block.where, unknown_metrics(block.text))
        return "metrics"
    if block.kind == "session":
        _run_session(block)
        return "session"
    if block.kind == "file":
        assert block.text == (REPO / block.argument).read_text(), (
            f"{block.where} differs from {block.argument}"
        )
        return "file"
    if block.lang in ("bash", "sh", ""):
        checked, problems = check_shell(shell_commands(block.text))
        assert not problems, (block.where, problems)
        assert checked or block.kind == "walkthrough", (
            f"{block.where}: nothing here can be checked: add <!-- doctest: skip: why -->"
        )
        return "shell"
    if block.lang == "yaml":
        doc = yaml.safe_load(block.text)
        if isinstance(doc, dict) and "services" in doc:  # compose
            commands = [" ".join(s.get("command", [])) for s in doc["services"].values()]
            assert not check_shell(c for c in commands if c)[1], block.where
            return "compose"
        problems = _flow_problems(block)
        assert not problems, (block.where, problems)
        return "flow"
    if block.lang == "json":
        text = block.text.strip()
        json.loads(text if text.startswith(("{", "[")) else "{" + text + "}")
        return "json"
    if block.lang == "python":
        _run_python(block)
        return "python"
    if block.lang == "ini":
        commands = [
            line.split("=", 1)[1] for line in block.text.splitlines() if line.startswith("Exec")
        ]
        assert not check_shell(commands)[1], block.where
        return "ini"
    raise AssertionError(f"{block.where}: no check for ```{block.lang}: add a doctest comment")


@pytest.mark.parametrize("block", BLOCKS, ids=[b.where for b in BLOCKS])
def test_documented_example(block: Block) -> None:
    """The example agrees with the code (see the module docstring for what that means
    for each kind of block)."""
    check(block)


def test_every_document_has_its_examples_checked() -> None:
    """Most blocks are checked, not skipped: skips are the exception, each with a reason."""
    skipped = [b.where for b in BLOCKS if b.kind == "skip"]
    assert len(skipped) <= len(BLOCKS) // 3, skipped


def test_the_code_block_example_signs_like_the_server() -> None:
    """The receiver example of docs/security.md verifies a signature flowhook made: a
    tampered body makes the same code raise."""
    (block,) = [b for b in BLOCKS if "standardwebhooks" in b.text and b.lang == "python"]
    _run_python(block)
    tampered = Block(block.doc, block.line, block.lang, block.text, None)
    namespace = _signed_request()
    namespace["raw_body_bytes"] = b'{"userId":"x"}'
    code = tampered.text.replace('"whsec_..."', "secret")
    with pytest.raises(Exception, match=r"(?i)signature"):
        exec(compile(code, block.where, "exec"), namespace)  # noqa: S102
