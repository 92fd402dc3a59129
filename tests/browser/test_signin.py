"""Signing in to the console with the admin token, the session cookie, signing out,
and changes refused without the CSRF token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import BROWSER_LOOP
from tests.browser.console import open_console
from tests.support.server import ADMIN_TOKEN, RunningServer

pytestmark = BROWSER_LOOP


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """Sign-in and the CSRF check do not depend on the storage backend: SQLite only."""
    return f"sqlite:///{tmp_path / 'flowhook.db'}"


async def test_wrong_token_gets_a_clear_page_and_the_right_one_a_strict_cookie(
    browser: Any, server: RunningServer
) -> None:
    """A wrong token answers 401 with a page saying what the token is; the right one sets
    an HttpOnly, SameSite=Strict session cookie (not Secure on plain HTTP) and leads to
    the endpoints page; signing out ends the session."""
    context = await browser.new_context()
    page = await context.new_page()
    answer = await page.goto(server.base_url + "/console/flows")
    assert answer.status == 200
    assert "/login?next=/console/flows" in page.url
    await page.get_by_label("Admin token").fill("not-the-token")
    async with page.expect_response(lambda r: r.url.endswith("/login")) as wrong:
        await page.get_by_role("button", name="Sign in").click()
    assert (await wrong.value).status == 401
    alert = page.get_by_role("alert")
    assert "not the admin token" in await alert.inner_text()
    assert "not-the-token" not in await page.content()
    assert await context.cookies() == []

    await page.get_by_label("Admin token").fill(ADMIN_TOKEN)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(server.base_url + "/console/flows")
    (cookie,) = await context.cookies()
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["secure"] is False
    assert ADMIN_TOKEN not in cookie["value"]
    assert ADMIN_TOKEN not in await page.content()

    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url("**/login?notice=signed-out")
    assert "You are signed out" in await page.content()
    # The old cookie value no longer opens the console, even if presented again.
    other = await browser.new_context()
    await other.add_cookies(
        [{"name": cookie["name"], "value": cookie["value"], "url": server.base_url}]
    )
    other_page = await other.new_page()
    await other_page.goto(server.base_url + "/")
    assert "/login" in other_page.url


async def test_changes_without_the_csrf_token_are_refused(
    browser: Any, server: RunningServer
) -> None:
    """A signed-in browser's POST without the form token, or with a wrong one, is refused
    with 403 and changes nothing; a POST without a session gets 401."""
    console = await open_console(browser, server)
    form = {"name": "forged", "flow": "echo", "webhookUrl": "http://127.0.0.1:9/hook"}
    request = console.page.request
    url = server.base_url + "/console/endpoints/new"
    missing = await request.post(url, form=form, max_redirects=0)
    assert missing.status == 403
    assert "did not carry" in await missing.text()
    wrong = await request.post(url, form={**form, "csrf": "0" * 40}, max_redirects=0)
    assert wrong.status == 403
    assert await server.services.endpoints.list_all() == []

    anonymous = await browser.new_context()
    answer = await anonymous.request.post(url, form=form, max_redirects=0)
    assert answer.status == 401
    assert await server.services.endpoints.list_all() == []

    # The same form with the page's token goes through.
    csrf = await console.page.locator('meta[name="csrf-token"]').get_attribute("content")
    made = await request.post(url, form={**form, "csrf": csrf}, max_redirects=0)
    assert made.status == 303
    assert [e.name for e in await server.services.endpoints.list_all()] == ["forged"]


async def test_the_console_works_from_the_keyboard(browser: Any, server: RunningServer) -> None:
    """Signing in needs only typing and Enter; on every page the first Tab reaches the
    skip link, which moves focus to the content; the main navigation follows."""
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(server.base_url + "/")
    await page.keyboard.type(ADMIN_TOKEN)  # the token field has the focus
    await page.keyboard.press("Enter")
    await page.wait_for_url(server.base_url + "/")
    await page.keyboard.press("Tab")
    focused = await page.evaluate("document.activeElement.textContent")
    assert focused == "Skip to content"
    await page.keyboard.press("Enter")
    assert await page.evaluate("document.activeElement.id") == "main"
    await page.goto(server.base_url + "/")
    await page.keyboard.press("Tab")
    await page.keyboard.press("Tab")
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent") == "Endpoints"
    await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")
    await page.wait_for_url(server.base_url + "/console/flows")
