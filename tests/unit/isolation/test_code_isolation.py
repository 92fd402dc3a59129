"""Flow authors' code runs in worker processes: bounded in time and memory, never on
the event loop, and only from files in the flows dir."""

from __future__ import annotations

import asyncio
import os
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowhook.flows import Engine, FlowRegistry, validate_path
from flowhook.flows.resources import EngineResources
from flowhook.isolation import CodeCallFailed, CodeTimeout, CodeWorkers, IsolationLimits
from flowhook.trusted_code import resolve_code_ref

from ..flows.helpers import Conversation, write_flow

SLOW = """
import time

def slow(input, context, profile):
    time.sleep(float(input["text"]))
    return {"outputs": ["woke up"]}

def hog(input, context, profile):
    block = bytearray(2 * 1024 * 1024 * 1024)  # 2 GB, over the limit
    return {"outputs": [str(len(block))]}

def pid(input, context, profile):
    import os
    return {"outputs": [str(os.getpid())]}
"""

FLOW = """
nodes:
  start: {type: code, function: "helpers.py:{{F}}", next: done, error: failed}
  done: {type: say, text: "done"}
  failed: {type: say, text: "failed: {{ context.codeError }}"}
"""


def engine_with(tmp_path: Path, function: str, workers: CodeWorkers) -> Engine:
    (tmp_path / "helpers.py").write_text(textwrap.dedent(SLOW), encoding="utf-8")
    write_flow(tmp_path, FLOW.replace("{{F}}", function))
    return Engine(FlowRegistry.load(tmp_path), resources=EngineResources(code_workers=workers))


@pytest.fixture
def workers() -> Iterator[CodeWorkers]:
    pool = CodeWorkers(IsolationLimits(workers=2, timeout=0.5, memory_mb=256))
    yield pool
    pool.close()


async def test_slow_code_does_not_block_the_event_loop(
    tmp_path: Path, workers: CodeWorkers
) -> None:
    """A code node sleeping 3 s neither stalls the event loop (a ticker keeps ticking)
    nor outlives its 0.5 s timeout: the turn fails with the flow's error output."""
    engine = engine_with(tmp_path, "slow", workers)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    tick_task = asyncio.create_task(ticker())
    started = time.monotonic()
    texts = await Conversation(engine).texts("3")
    elapsed = time.monotonic() - started
    tick_task.cancel()
    assert texts == ["Sorry, something went wrong."]  # a timeout fails the turn
    assert elapsed < 2.5
    assert ticks >= 10  # the loop ran while the code slept


async def test_timed_out_code_is_killed(workers: CodeWorkers, tmp_path: Path) -> None:
    """The worker of a call past its timeout is killed (the code really stops), and the
    pool starts a fresh worker for the next call."""
    (tmp_path / "helpers.py").write_text(textwrap.dedent(SLOW), encoding="utf-8")
    pid_ref = resolve_code_ref("helpers.py:pid", tmp_path)
    slow = resolve_code_ref("helpers.py:slow", tmp_path)
    first = int((await workers.run_isolated(pid_ref, [{}, {}, {}]))["outputs"][0])
    with pytest.raises(CodeTimeout, match="timeout"):
        await workers.run_isolated(slow, [{"text": "5"}, {}, {}])  # on the same worker
    with pytest.raises(ProcessLookupError):
        os.kill(first, 0)  # killed and reaped
    second = int((await workers.run_isolated(pid_ref, [{}, {}, {}]))["outputs"][0])
    assert second != first
    assert workers.started == 1


async def test_code_over_its_memory_limit_fails_cleanly(
    tmp_path: Path, workers: CodeWorkers
) -> None:
    """Allocating 2 GB under a 256 MB limit fails the call with a clear error (taking
    the error branch) instead of growing the server."""
    engine = engine_with(tmp_path, "hog", workers)
    texts = await Conversation(engine).texts("x")
    assert texts == ["failed: MemoryError: the code went over its memory limit"]


async def test_concurrent_calls_share_the_bounded_pool(
    workers: CodeWorkers, tmp_path: Path
) -> None:
    """Six calls at once on a pool of two run two at a time and all answer."""
    (tmp_path / "helpers.py").write_text(textwrap.dedent(SLOW), encoding="utf-8")
    slow = resolve_code_ref("helpers.py:slow", tmp_path)
    results = await asyncio.gather(
        *(workers.run_isolated(slow, [{"text": "0.05"}, {}, {}]) for _ in range(6))
    )
    assert all(r == {"outputs": ["woke up"]} for r in results)
    assert workers.started <= 2


def test_blocking_call_has_the_same_timeout(workers: CodeWorkers, tmp_path: Path) -> None:
    """The synchronous entry point also kills a call past its timeout."""
    (tmp_path / "helpers.py").write_text(textwrap.dedent(SLOW), encoding="utf-8")
    slow = resolve_code_ref("helpers.py:slow", tmp_path)
    assert workers.run_blocking(slow, [{"text": "0"}, {}, {}]) == {"outputs": ["woke up"]}
    started = time.monotonic()
    with pytest.raises(CodeTimeout):
        workers.run_blocking(slow, [{"text": "5"}, {}, {}])
    assert time.monotonic() - started < 2


async def test_module_functions_need_the_setting(tmp_path: Path) -> None:
    """``os:system``-style names from sys.path are refused unless code_allow_modules is
    on; with it, they run (in a worker)."""
    ref = resolve_code_ref("json:dumps", tmp_path)
    strict = CodeWorkers(IsolationLimits(allow_modules=False))
    with pytest.raises(CodeCallFailed, match="code_allow_modules"):
        await strict.run_isolated(ref, [[1, 2]])
    allowed = CodeWorkers(IsolationLimits(allow_modules=True))
    try:
        assert await allowed.run_isolated(ref, [[1, 2]]) == "[1, 2]"
    finally:
        allowed.close()
    with pytest.raises(ValueError, match="code_allow_modules"):
        resolve_code_ref("os:system", tmp_path, allow_modules=False)


@pytest.mark.parametrize(
    "spec",
    ["../outside.py:f", "sub/../../outside.py:f", "/etc/passwd.py:f", "link.py:f"],
)
def test_only_files_inside_the_flows_dir_are_code(tmp_path: Path, spec: str) -> None:
    """A code file outside the flows dir (``..``, absolute, or a symlink leading out) is
    refused when the flow loads."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (tmp_path / "outside.py").write_text("def f(a, b, c):\n    return None\n")
    (flows / "link.py").symlink_to(tmp_path / "outside.py")
    write_flow(flows, f'nodes:\n  c: {{type: code, function: "{spec}"}}\n')
    problems = validate_path(flows / "test.yaml")
    assert len(problems) == 1
    assert "outside the flows dir" in problems[0] or "cannot load" in problems[0]


def test_loading_a_flow_runs_none_of_its_code(tmp_path: Path) -> None:
    """Loading a flow reads the code file (to check the function exists) but never
    executes it in the server: a top-level side effect does not happen."""
    marker = tmp_path / "ran"
    (tmp_path / "helpers.py").write_text(
        f"open({str(marker)!r}, 'w').write('x')\n\ndef f(a, b, c):\n    return None\n"
    )
    write_flow(tmp_path, 'nodes:\n  c: {type: code, function: "helpers.py:f"}\n')
    FlowRegistry.load(tmp_path)
    assert not marker.exists()


async def test_waiting_for_a_busy_pool_is_bounded(tmp_path: Path) -> None:
    """Calls queued behind a busy pool of one worker each end (a timeout or the time
    they waited for a worker is bounded): nothing hangs, and the pool still answers."""
    (tmp_path / "helpers.py").write_text(textwrap.dedent(SLOW), encoding="utf-8")
    slow = resolve_code_ref("helpers.py:slow", tmp_path)
    pool = CodeWorkers(IsolationLimits(workers=1, timeout=0.3, start_timeout=10))
    try:
        started = time.monotonic()
        results = await asyncio.wait_for(
            asyncio.gather(
                *(pool.run_isolated(slow, [{"text": "5"}, {}, {}]) for _ in range(3)),
                return_exceptions=True,
            ),
            timeout=40,
        )
        assert all(isinstance(r, CodeTimeout) for r in results)
        assert time.monotonic() - started < 40
        assert await pool.run_isolated(slow, [{"text": "0"}, {}, {}]) == {"outputs": ["woke up"]}
    finally:
        pool.close()


def test_server_refuses_flows_naming_modules_without_the_setting(tmp_path: Path) -> None:
    """A flow in the flows dir whose code node names ``os:system`` stops the server from
    starting (naming file, line and setting) unless code_allow_modules is on."""
    from flowhook.config import Settings
    from flowhook.errors import ConfigError
    from flowhook.services import build_services

    flows = tmp_path / "flows"
    flows.mkdir()
    write_flow(flows, "nodes:\n  run: {type: code, function: 'os:system'}\n")
    settings = Settings(data_dir=tmp_path / "data", flows_dir=flows, admin_token="t")
    with pytest.raises(ConfigError, match=r"test\.yaml:2.*code_allow_modules"):
        build_services(settings)
    allowed = build_services(settings.model_copy(update={"code_allow_modules": True}))
    allowed.store.close()
    assert allowed.engine.has_flow("test")
