"""The flows page reports the problems of the files on disk as file:line; hostile
session ids and search text are shown as text, never run, and never cause a 5xx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio

from tests.browser.conftest import BROWSER_LOOP, LOOP
from tests.browser.console import open_console
from tests.support.receiver import Receiver
from tests.support.server import RunningServer, running_server

pytestmark = BROWSER_LOOP

GOOD = """
name: greet
start: hello
nodes:
  hello:
    type: say
    text: "Hello {{ input.text }}"
"""

BROKEN = """
name: greet
start: hello
nodes:
  hello:
    type: say
    text: "Hello"
    next: nowhere
"""

# Hostile, yet within what the ingress accepts (ids of at most 256 characters).
HOSTILE = "<img src=x onerror=alert(1)>/../ü%2F?x=1&y=\u202e" + "s" * 200


@pytest_asyncio.fixture(loop_scope=LOOP)
async def server(tmp_path: Path, db_url: str) -> AsyncIterator[RunningServer]:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "greet.yaml").write_text(GOOD)
    async with running_server(tmp_path, db_url, flows_dir=flows) as s:
        yield s


async def test_flow_problems_on_disk_are_listed_with_file_and_line(
    browser: Any, server: RunningServer
) -> None:
    """A flow file broken after start-up is reported on the flows page with its path and
    line, while the loaded flow keeps being drawn."""
    console = await open_console(browser, server)
    await console.visit("/console/flows")
    assert "Every flow file checks out" in await console.page.content()
    flow_file = server.services.settings.flows_dir / "greet.yaml"
    flow_file.write_text(BROKEN)
    await console.visit("/console/flows")
    problems = await console.page.locator(".problems li").all_inner_texts()
    assert any(f"{flow_file}:8" in p and "nowhere" in p for p in problems), problems
    await console.visit("/console/flows/greet")
    assert await console.page.locator("svg.flow-graph g.node").count() == 1


async def test_hostile_session_ids_and_search_text_are_only_shown(
    browser: Any, server: RunningServer, receiver: Receiver
) -> None:
    """A session id full of markup, path tricks, percent signs and a bidi override is
    listed, searched and opened as plain text: no script runs, nothing answers 5xx."""
    ep = await server.create_endpoint(name="odd", flow="greet", webhookUrl=receiver.url)
    status, _ = await server.post_message(
        ep, {"userId": HOSTILE, "sessionId": HOSTILE, "text": "<b>bold</b>"}
    )
    assert status == 202
    await server.services.run_until_idle()
    console = await open_console(browser, server)
    dialogs: list[str] = []
    console.page.on("dialog", lambda d: dialogs.append(d.message))
    base = f"/console/endpoints/{ep['id']}"
    await console.visit(f"{base}/conversations?q=%3Cimg")
    await console.page.get_by_role("link", name="<img src=x").click()
    await console.page.locator("#transcript .msg.bot").wait_for()
    texts = await console.page.locator("#transcript .msg").all_inner_texts()
    assert "<b>bold</b>" in texts[0]
    assert "Hello <b>bold</b>" in texts[1]
    assert await console.page.locator("#transcript b").count() == 0
    for path in (
        f"{base}/conversations?q=%25%5F%5C",
        f"{base}/deliveries?status=<x>&session=%00%ff",
        "/?q=" + "%F0%9F%92%A5" * 500,
    ):
        await console.visit(path)
    await console.visit(f"{base}/transcript?session=", status=400)
    assert dialogs == []


async def test_oversized_and_odd_forms_get_a_4xx_page(browser: Any, server: RunningServer) -> None:
    """A form over the body limit answers 413, one with too many fields or in another
    encoding 400, a number box holding text an error next to it: a page, never a 5xx."""
    console = await open_console(browser, server)
    csrf = await console.page.locator('meta[name="csrf-token"]').get_attribute("content")
    request = console.page.request
    url = server.base_url + "/console/endpoints/new"
    huge = await request.post(url, form={"csrf": csrf or "", "name": "x" * 300_000})
    assert huge.status == 413
    many = "&".join(f"f{i}=1" for i in range(600)) + f"&csrf={csrf}"
    crowded = await request.post(
        url, data=many, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert crowded.status == 400
    as_json = await request.post(url, data={"csrf": csrf, "name": "j"}, max_redirects=0)
    assert as_json.status == 400
    odd = await request.post(
        url,
        form={
            "csrf": csrf or "",
            "name": "n",
            "flow": "greet",
            "type": "rest",
            "rateLimitBurst": "1e999",
            "transcriptRetentionDays": "NaN",
        },
    )
    assert odd.status == 400
    text = await odd.text()
    assert 'id="e-rateLimitBurst"' in text
    assert 'id="e-transcriptRetentionDays"' in text
    assert await server.services.endpoints.list_all() == []
