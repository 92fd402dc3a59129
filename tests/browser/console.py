"""Driving the console in the browser: sign in, visit pages while checking that no
answer is a 5xx and no page source holds a secret, and take screenshots."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.server import ADMIN_TOKEN, RunningServer

LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


@dataclass
class Console:
    """One signed-in browser context on the console, watching every answer."""

    server: RunningServer
    page: Any
    secrets: set[str] = field(default_factory=lambda: {ADMIN_TOKEN})
    server_errors: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return self.server.base_url

    async def visit(self, path: str, *, status: int = 200) -> str:
        """Open ``path``; check its status and that its source holds no secret."""
        answer = await self.page.goto(self.base + path)
        assert answer is not None
        assert answer.status == status, f"{path}: {answer.status}"
        return await self.check_source()

    async def check_source(self, *, allow: str | None = None) -> str:
        """The page source, checked for every known secret (except ``allow``, a secret
        this very page shows once)."""
        html: str = await self.page.content()
        for secret in self.secrets - {allow}:
            assert secret not in html, f"a secret is in the source of {self.page.url}"
        assert not self.server_errors, self.server_errors
        return html

    async def shot(self, dirs: list[Path], name: str, *, full: bool = True) -> None:
        for d in dirs:
            await self.page.screenshot(path=str(d / f"{name}.png"), full_page=full)


async def open_console(
    browser: Any, server: RunningServer, *, viewport: dict[str, int] = LAPTOP
) -> Console:
    """A fresh context, signed in with the admin token through the login form."""
    context = await browser.new_context(viewport=viewport)
    context.set_default_timeout(10_000)
    page = await context.new_page()
    console = Console(server, page)
    page.on(
        "response",
        lambda r: console.server_errors.append(f"{r.status} {r.url}") if r.status >= 500 else None,
    )
    await page.goto(server.base_url + "/")
    assert page.url.startswith(server.base_url + "/login")
    await page.get_by_label("Admin token").fill(ADMIN_TOKEN)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(server.base_url + "/")
    return console


async def unlabelled_controls(page: Any) -> list[str]:
    """Form controls a screen reader could not name (no label, aria-label or title)."""
    result: list[str] = await page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea')]
            .filter(el => el.type !== 'hidden')
            .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                          && !el.getAttribute('title'))
            .map(el => el.outerHTML)"""
    )
    return result
