"""Under CI=true the browser tests fail when Chromium cannot start; elsewhere they are
skipped with the reason (run in a child pytest with a browser path that does not exist)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.browser.conftest import REPO

TARGET = "tests/browser/test_signin.py::test_changes_without_the_csrf_token_are_refused"


def run_without_browser(ci: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["FLOWHOOK_CHROMIUM"] = "/nonexistent/chromium"
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", TARGET],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_missing_browser_fails_under_ci() -> None:
    """CI=true and no Chromium: the browser test fails, naming why."""
    result = run_without_browser(ci=True)
    assert result.returncode == 1, result.stdout
    assert "cannot run under CI=true" in result.stdout
    assert "/nonexistent/chromium" in result.stdout


def test_a_missing_browser_skips_elsewhere() -> None:
    """Without CI=true and no Chromium: the browser test is skipped, naming why."""
    result = run_without_browser(ci=False)
    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout
    assert "/nonexistent/chromium" in result.stdout
