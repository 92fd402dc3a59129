"""A user's profile outlives sessions and is never lost to concurrent sessions."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.receiver import Receiver
from tests.support.server import running_server

COUNTER_FLOW = """
name: counter
nodes:
  count:
    type: set
    profile:
      visits: "{{ (profile.visits or 0) + 1 }}"
    next: tell
  tell:
    type: say
    text: "visit {{ profile.visits }}"
"""


async def test_profile_is_shared_across_sessions_without_lost_updates(
    tmp_path: Path, db_url: str, receiver: Receiver
) -> None:
    """Two sessions of one user, messages interleaved: every turn sees and stores the
    profile the previous one left, so the counter ends at the number of messages; another
    user's profile is separate; the profile survives a restart."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "counter.yaml").write_text(COUNTER_FLOW)
    async with running_server(tmp_path, db_url, flows_dir=flows) as srv:
        ep = await srv.create_endpoint(name="c", flow="counter", webhookUrl=receiver.url)
        posts = [
            srv.post_message(ep, {"userId": "alice", "sessionId": f"s{i % 2}", "text": "hi"})
            for i in range(20)
        ]
        assert {status for status, _ in await asyncio.gather(*posts)} == {202}
        await srv.post_message(ep, {"userId": "bob", "sessionId": "s0", "text": "hi"})
        await receiver.wait_for(21)
        alice = sorted(
            int(b["AIOutput"]["text"].split()[1])
            for b in receiver.bodies()
            if b["userId"] == "alice"
        )
        assert alice == list(range(1, 21))
        assert [b["AIOutput"]["text"] for b in receiver.bodies() if b["userId"] == "bob"] == [
            "visit 1"
        ]
        assert await srv.services.store.load_profile(ep["id"], "alice") == {"visits": 20}

    async with running_server(tmp_path, db_url, flows_dir=flows) as srv:
        ep["endpointUrl"] = f"{srv.base_url}/endpoint/{ep['urlToken']}"  # a new port
        await srv.post_message(ep, {"userId": "alice", "sessionId": "new", "text": "hi"})
        await receiver.wait_for(22)
        assert receiver.bodies()[-1]["AIOutput"]["text"] == "visit 21"
