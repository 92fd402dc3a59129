"""Browser fixtures: Debian's Chromium driven by Playwright against the real server.

Under ``CI=true`` a browser that cannot start fails the tests; elsewhere they are
skipped with the reason. Screenshots of every page go to the test's directory and,
with ``FLOWHOOK_SCREENSHOTS=<dir>``, to that directory (docs/screenshots for the docs).

One Chromium (and one Playwright driver) serves the whole package: starting them is
seconds of CPU, and each test still gets what isolates it, a new browser context (its
own cookies, storage and cache) against its own server, closed before that server
stops. So every async fixture and test here runs on the package's event loop
(``LOOP``): each test module says ``pytestmark = BROWSER_LOOP``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final, Literal

import pytest
import pytest_asyncio

from tests.support.receiver import Receiver
from tests.support.server import RunningServer, running_server

REPO = Path(__file__).resolve().parents[2]
LOOP: Final[Literal["package"]] = "package"
BROWSER_LOOP = pytest.mark.asyncio(loop_scope=LOOP)
CHROMIUM = os.environ.get("FLOWHOOK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"the browser tests cannot run under CI=true: {reason}")
    pytest.skip(reason)


@pytest_asyncio.fixture(loop_scope=LOOP)
async def receiver() -> AsyncIterator[Receiver]:
    """The end-to-end suite's real webhook receiver, on the package's loop."""
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


@pytest_asyncio.fixture(loop_scope=LOOP)
async def server(tmp_path: Path, db_url: str) -> AsyncIterator[RunningServer]:
    """The real server (on each backend) with the repository's flows, one per test."""
    async with running_server(tmp_path, db_url, flows_dir=REPO / "flows") as s:
        yield s


@pytest_asyncio.fixture(scope=LOOP, loop_scope=LOOP)
async def chromium() -> AsyncIterator[Any]:
    """Chromium, started once for the package."""
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[dev]')")
    async with async_playwright() as pw:
        try:
            launched = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Exception as exc:
            _unavailable(f"Chromium did not start from {CHROMIUM}: {exc}")
        try:
            yield launched
        finally:
            await launched.close()


@pytest_asyncio.fixture(loop_scope=LOOP)
async def browser(chromium: Any, server: RunningServer) -> AsyncIterator[Any]:
    """The package's Chromium for one test: every context the test opens is closed
    before its server stops (their open event streams end with them), so the next test
    starts with none."""
    assert chromium.is_connected(), "Chromium went away during an earlier test"
    assert not chromium.contexts, "an earlier test left a browser context open"
    try:
        yield chromium
    finally:
        for context in chromium.contexts:
            await context.close()


@pytest.fixture
def shots(tmp_path: Path) -> list[Path]:
    """Where screenshots go: the test's directory, and FLOWHOOK_SCREENSHOTS if set."""
    dirs = [tmp_path / "screenshots"]
    extra = os.environ.get("FLOWHOOK_SCREENSHOTS")
    if extra:
        dirs.append(Path(extra) if Path(extra).is_absolute() else REPO / extra)
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    return dirs
