"""A message that kills the process running it is retried a bounded number of times,
then failed: restarts never loop on the same poison, and the session's next message is
delivered after it. A real `flowhook serve` process on SQLite, really killed (SIGKILL
from inside the turn) and restarted."""

from __future__ import annotations

import asyncio
import os
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
import os
import signal


async def die(input, context, profile):
    await asyncio.sleep(1.0)  # the test's next message is accepted meanwhile
    os.kill(os.getpid(), signal.SIGKILL)
"""


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
    (tmp_path / "flows" / "kill.py").write_text(KILL)
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
            for _ in range(6):
                exit_code = await asyncio.to_thread(proc.popen.wait, 30)
                assert exit_code == -9, proc.output()
                deaths += 1
                proc.stop()
                proc = serve(tmp_path, port)
                await asyncio.to_thread(wait_for_line, proc, "flowhook is running", 60)
                try:
                    await receiver.wait_for(2, timeout=8)
                    break
                except TimeoutError:
                    continue
            assert deaths == 3  # the first run, then FLOWHOOK_TURN_MAX_ATTEMPTS more
            assert [b["AIOutput"]["text"] for b in receiver.bodies()] == [
                "You said: before",
                "You said: after",
            ]
            async with http.get(
                f"{base}/api/v1/endpoints/{ep['id']}/messages?status=failed", headers=admin
            ) as resp:
                (failed,) = orjson.loads(await resp.read())["messages"]
            assert failed["attempts"] == 3
            assert "started 3 times without finishing" in failed["error"]
    finally:
        proc.stop()
