"""Browser fixtures: Debian's Chromium driven by Playwright against the real server.

Under ``CI=true`` a browser that cannot start fails the tests; elsewhere they are
skipped with the reason. Screenshots of every page go to the test's directory and,
with ``FLOWHOOK_SCREENSHOTS=<dir>``, to that directory (docs/screenshots for the docs).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

# The real server (on each backend) and webhook receiver of the end-to-end suite.
from tests.e2e.conftest import receiver, server
from tests.support.server import RunningServer

REPO = Path(__file__).resolve().parents[2]
__all__ = ["receiver", "server"]
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


@pytest.fixture
async def browser(server: RunningServer) -> AsyncIterator[Any]:
    """Chromium, closed before the server stops (its open event streams end with it)."""
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[dev]')")
    async with async_playwright() as pw:
        try:
            chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Exception as exc:
            _unavailable(f"Chromium did not start from {CHROMIUM}: {exc}")
        try:
            yield chromium
        finally:
            await chromium.close()


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
