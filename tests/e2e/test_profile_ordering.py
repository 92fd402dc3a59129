"""Turns of one user's sessions wait for each other only when the flow touches the profile."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp import web

from flowhook.flows.registry import FlowRegistry
from tests.support.receiver import Receiver
from tests.support.server import running_server

SESSIONS = 4
HOLD_SECONDS = 0.4

# Both flows make one HTTP call per turn to a gate that holds each call until all
# SESSIONS calls are in flight at once (or HOLD_SECONDS passed): it sees how many
# turns of the user run at the same time.
NO_PROFILE_FLOW = """
name: no-profile
nodes:
  call: {type: http, url: "GATE/hold", timeout: 5, next: tell, error: tell}
  tell: {type: say, text: "done {{ input.text }}"}
"""
PROFILE_FLOW = """
name: with-profile
nodes:
  call: {type: http, url: "GATE/hold?seen={{ profile.seen }}", timeout: 5, next: mark,
         error: mark}
  mark: {type: set, profile: {seen: true}, next: tell}
  tell: {type: say, text: "done {{ input.text }}"}
"""


class Gate:
    def __init__(self) -> None:
        self.in_flight = 0
        self.most = 0
        self.all_in = asyncio.Event()
        self.arrived = asyncio.Event()
        self.url = ""

    async def hold(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.arrived.set()
        self.most = max(self.most, self.in_flight)
        if self.in_flight >= SESSIONS:
            self.all_in.set()
        try:
            await asyncio.wait_for(self.all_in.wait(), HOLD_SECONDS)
        except TimeoutError:
            pass
        finally:
            self.in_flight -= 1
        return web.json_response({"ok": True})


@asynccontextmanager
async def gate_server() -> AsyncIterator[Gate]:
    gate = Gate()
    app = web.Application()
    app.router.add_get("/hold", gate.hold)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    gate.url = f"http://127.0.0.1:{port}"
    try:
        yield gate
    finally:
        await runner.cleanup()


async def run_one_user(tmp_path: Path, db_url: str, receiver: Receiver, flow: str) -> Gate:
    async with gate_server() as gate:
        flows = tmp_path / "flows"
        flows.mkdir(exist_ok=True)
        (flows / "no-profile.yaml").write_text(NO_PROFILE_FLOW.replace("GATE", gate.url))
        (flows / "with-profile.yaml").write_text(PROFILE_FLOW.replace("GATE", gate.url))
        async with running_server(tmp_path, db_url, flows_dir=flows) as srv:
            try:
                ep = await srv.create_endpoint(name="ep", flow=flow, webhookUrl=receiver.url)
                posts = [
                    srv.post_message(ep, {"userId": "one", "sessionId": f"s{i}", "text": str(i)})
                    for i in range(SESSIONS)
                ]
                assert {status for status, _ in await asyncio.gather(*posts)} == {202}
                await receiver.wait_for(SESSIONS)
            finally:
                await srv.services.engine.aclose()
        return gate


async def test_one_users_sessions_run_at_once_when_the_flow_ignores_the_profile(
    tmp_path: Path, db_url: str, receiver: Receiver
) -> None:
    """A flow that never names the profile: the turns of one user's four sessions are in
    their flow at the same time (no per-user order), and all are delivered."""
    gate = await run_one_user(tmp_path, db_url, receiver, "no-profile")
    assert gate.most == SESSIONS
    assert sorted(d.body["AIOutput"]["text"] for d in receiver.deliveries) == [
        f"done {i}" for i in range(SESSIONS)
    ]


async def test_one_users_sessions_take_turns_when_the_flow_uses_the_profile(
    tmp_path: Path, db_url: str, receiver: Receiver
) -> None:
    """A flow that reads and sets the profile: the same four turns run one after the other
    (never two at once), so each sees the profile the previous one left."""
    gate = await run_one_user(tmp_path, db_url, receiver, "with-profile")
    assert gate.most == 1
    assert len(receiver.deliveries) == SESSIONS


SWAPPED_FLOW = """
name: no-profile
nodes:
  count:
    type: set
    profile:
      visits: "{{ (profile.visits or 0) + 1 }}"
    next: tell
  tell: {type: say, text: "new flow, visit {{ profile.visits }}"}
"""


async def test_a_turn_run_without_the_profile_runs_again_when_the_flows_change_meanwhile(
    tmp_path: Path, db_url: str, receiver: Receiver
) -> None:
    """A turn of a flow that ignores the profile is in its HTTP call when the flows are
    replaced by ones where the same flow counts visits in the profile: the turn is not
    committed as it ran, it runs again under the user's order on the new flow and the
    stored profile (one visit), so no output of a turn that skipped the profile hides
    a profile the new flows read."""
    async with gate_server() as gate:
        flows = tmp_path / "flows"
        flows.mkdir()
        (flows / "no-profile.yaml").write_text(NO_PROFILE_FLOW.replace("GATE", gate.url))
        swapped = tmp_path / "swapped"
        swapped.mkdir()
        (swapped / "no-profile.yaml").write_text(SWAPPED_FLOW)
        async with running_server(tmp_path, db_url, flows_dir=flows) as srv:
            try:
                ep = await srv.create_endpoint(
                    name="ep", flow="no-profile", webhookUrl=receiver.url
                )
                new_flows = FlowRegistry.load(swapped)
                status, _ = await srv.post_message(
                    ep, {"userId": "one", "sessionId": "s", "text": "hi"}
                )
                assert status == 202
                await asyncio.wait_for(gate.arrived.wait(), 10)
                srv.services.engine.use_registry(new_flows)
                gate.all_in.set()  # let the call of the old flow answer now
                await receiver.wait_for(1)
                await srv.services.run_until_idle(10)
                profile = await srv.services.store.load_profile(ep["id"], "one")
            finally:
                await srv.services.engine.aclose()
    assert [d.body["AIOutput"]["text"] for d in receiver.deliveries] == ["new flow, visit 1"]
    assert profile == {"visits": 1}
