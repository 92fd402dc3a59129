"""`flowhook deliveries ...` run as real processes next to a running server on the same
database: the server picks replays and a re-enabled endpoint up through its outbox sweep."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.e2e.conftest import REPO
from tests.support.server import running_server
from tests.support.webhooks import WebhookReceiver, status


def cli(tmp_path: Path, db_url: str, *args: str) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWHOOK_")}
    env["FLOWHOOK_FLOWS_DIR"] = str(REPO / "flows")
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "flowhook",
            "--data-dir",
            str(tmp_path / "data"),
            "--database-url",
            db_url,
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


async def test_cli_lists_shows_and_replays_and_the_server_delivers(
    tmp_path: Path, db_url: str
) -> None:
    """The CLI lists a dead letter, shows its attempts, replays the failed ones of the
    endpoint and switches a 410'd endpoint back on; the running server, which was not told,
    delivers both within its sweep interval."""
    hook = WebhookReceiver(answer=status(500))
    await hook.start()
    try:
        async with running_server(
            tmp_path, db_url, REPO / "flows", delivery_sweep_seconds=0.2
        ) as server:
            ep = await server.create_endpoint(name="cli", flow="echo", webhookUrl=hook.url)
            code, _ = await server.post_message(
                ep, {"userId": "u", "sessionId": "s", "text": "dead"}
            )
            assert code == 202
            await server.services.run_until_idle(10)

            page = await asyncio.to_thread(
                cli,
                tmp_path,
                db_url,
                "deliveries",
                "list",
                ep["id"],
                "--status",
                "failed",
                "--json",
            )
            (dead,) = page["items"]
            shown = await asyncio.to_thread(cli, tmp_path, db_url, "deliveries", "show", dead["id"])
            assert [a["statusCode"] for a in shown["attempts"]] == [500] * 4

            hook.answer = status(200)
            answer = await asyncio.to_thread(
                cli, tmp_path, db_url, "deliveries", "replay-failed", ep["id"]
            )
            assert answer["replayed"] == 1
            await hook.wait_until(lambda: len(hook.accepted) == 1, timeout=10)
            assert hook.accepted[0].webhook_id == dead["id"]

            hook.answer = status(410)
            code, _ = await server.post_message(
                ep, {"userId": "u", "sessionId": "s", "text": "gone"}
            )
            await server.services.run_until_idle(10)
            hook.answer = status(200)
            code, _ = await server.post_message(
                ep, {"userId": "u", "sessionId": "s", "text": "held"}
            )
            await server.services.run_until_idle(10)
            assert [h.text for h in hook.accepted] == ["You said: dead"]
            view = await asyncio.to_thread(cli, tmp_path, db_url, "deliveries", "enable", ep["id"])
            assert view["deliveryDisabled"] is False
            await hook.wait_until(lambda: len(hook.accepted) == 2, timeout=10)
            assert hook.accepted[1].text == "You said: held"
    finally:
        await hook.stop()
