"""A message whose turn is running whenever its process dies is retried a bounded number
of times, then failed: restarts never loop on the same poison, and the session's next
message is delivered after it. A real `flowhook serve` process on SQLite, really killed
(SIGKILL to its process group, code workers included, while the message's code node runs)
and restarted. Code nodes run in worker processes, so flow code cannot kill the server
itself: the test does it at the moment the code node says it started."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp
import orjson

from tests.support.processes import Proc, free_port, start, wait_for_line
from tests.support.receiver import Receiver

ADMIN = "crash-loop-admin-token"
FLOW = """
name: crasher
start: check
nodes:
  check:
    type: if
    condition: "input.text == 'crash'"
    then: die
    else: echo
  die:
    type: code
    function: "kill.py:die"
  echo:
    type: say
    text: "You said: {{ input.text }}"
"""
KILL = """
import asyncio


async def die(input, context, profile):
    with open({marks!r}, "a") as marks:
        marks.write("started\\n")
    await asyncio.sleep(20)  # the test kills the server meanwhile
"""


def runs_started(marks: Path) -> int:
    return len(marks.read_text().splitlines()) if marks.exists() else 0


async def next_run_or_deliveries(
    marks: Path, runs: int, receiver: Receiver, deliveries: int, timeout: float = 30
) -> bool:
    """Wait until run ``runs`` of the code node has started (True) or the receiver has
    ``deliveries`` deliveries (False), whichever comes first."""
    deadline = asyncio.get_running_loop().time() + timeout
    while runs_started(marks) < runs:
        if len(receiver.bodies()) >= deliveries:
            return False
        assert asyncio.get_running_loop().time() < deadline, (
            f"neither run {runs} nor {deliveries} deliveries within {timeout}s"
        )
        await asyncio.sleep(0.05)
    return True


def serve(tmp_path: Path, port: int) -> Proc:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWHOOK_")}
    env.update(
        FLOWHOOK_DATA_DIR=str(tmp_path / "data"),
        FLOWHOOK_FLOWS_DIR=str(tmp_path / "flows"),
        FLOWHOOK_PORT=str(port),
        FLOWHOOK_ADMIN_TOKEN=ADMIN,
        FLOWHOOK_WEBHOOK_ALLOW_CIDRS="127.0.0.0/8",
        FLOWHOOK_TURN_MAX_ATTEMPTS="2",
        FLOWHOOK_LOG_LEVEL="warning",
        PYTHONUNBUFFERED="1",
    )
    return start([sys.executable, "-m", "flowhook", "serve"], env)


async def test_a_message_that_kills_its_process_is_failed_after_bounded_retries(
    tmp_path: Path, receiver: Receiver
) -> None:
    """1 + FLOWHOOK_TURN_MAX_ATTEMPTS deaths, then the message is failed with the reason
    and the next message of its session is delivered, after the earlier one."""
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "crasher.yaml").write_text(FLOW)
    marks = tmp_path / "runs-started"
    (tmp_path / "flows" / "kill.py").write_text(KILL.format(marks=str(marks)))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    admin = {"Authorization": f"Bearer {ADMIN}"}
    proc = serve(tmp_path, port)
    deaths = 0
    try:
        await asyncio.to_thread(wait_for_line, proc, "flowhook is running", 60)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:
            async with http.post(
                f"{base}/api/v1/endpoints",
                json={"name": "c", "flow": "crasher", "webhookUrl": receiver.url},
                headers=admin,
            ) as resp:
                ep = await resp.json()
            url = f"{base}/endpoint/{ep['urlToken']}"
            for text in ("before", "crash", "after"):
                body = {"userId": "u", "sessionId": "s", "text": text}
                async with http.post(url, json=body) as resp:
                    assert resp.status == 202
            # Each run of the poison message is killed as soon as it starts; once it is
            # failed, no run starts again and the session's next message is delivered.
            while await next_run_or_deliveries(marks, deaths + 1, receiver, 2):
                assert deaths < 6, "the message is retried without bound"
                os.killpg(proc.popen.pid, signal.SIGKILL)
                exit_code = await asyncio.to_thread(proc.popen.wait, 30)
                assert exit_code == -9, proc.output()
                deaths += 1
                proc.stop()
                proc = serve(tmp_path, port)
                await asyncio.to_thread(wait_for_line, proc, "flowhook is running", 60)
            assert deaths == 3  # the first run, then FLOWHOOK_TURN_MAX_ATTEMPTS more
            assert [b["AIOutput"]["text"] for b in receiver.bodies()] == [
                "You said: before",
                "You said: after",
            ]
            async with http.get(
                f"{base}/api/v1/endpoints/{ep['id']}/messages?status=failed", headers=admin
            ) as resp:
                (failed,) = orjson.loads(await resp.read())["items"]
            assert failed["attempts"] == 3
            assert "started 3 times without finishing" in failed["error"]
    finally:
        proc.stop()
