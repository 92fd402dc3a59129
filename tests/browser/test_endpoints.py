"""Creating and editing endpoints in the console (errors next to their fields), API keys
shown once, and the signing secret."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import BROWSER_LOOP
from tests.browser.console import open_console
from tests.support.receiver import Receiver
from tests.support.server import RunningServer

pytestmark = BROWSER_LOOP


async def test_create_an_endpoint_with_errors_shown_next_to_their_fields(
    browser: Any, server: RunningServer, receiver: Receiver
) -> None:
    """The create form shows the service's own validation errors next to the field they
    concern (URL, rate limit, JSON setting), keeps what was typed, never echoes the
    password; once fixed, the endpoint is created with every setting given and listed."""
    console = await open_console(browser, server)
    page = console.page
    await page.get_by_role("link", name="New endpoint").click()
    await page.get_by_label("Name", exact=True).fill("support-bot")
    await page.get_by_label("Flow").select_option("order-help")
    await page.get_by_label("Webhook URL").fill("ftp://example.com/hook")
    await page.get_by_label("Basic Auth password").fill("pw-never-shown-7")
    await page.get_by_label("Rate limit (messages per second)").fill("-3")
    await page.get_by_label("NLU connector (JSON)").fill("{not json")
    console.secrets.add("pw-never-shown-7")
    await page.get_by_role("button", name="Create endpoint").click()
    await page.wait_for_selector("#form-problems")
    await console.check_source()
    url_error = page.locator("#e-webhookUrl")
    assert "http" in await url_error.inner_text()
    assert await page.get_by_label("Webhook URL").get_attribute("aria-invalid") == "true"
    assert "JSON" in await page.locator("#e-nluConnector").inner_text()
    assert await page.get_by_label("Name", exact=True).input_value() == "support-bot"
    assert await server.services.endpoints.list_all() == []

    await page.get_by_label("NLU connector (JSON)").fill("")
    await page.get_by_label("Webhook URL").fill(receiver.url)
    await page.get_by_label("Basic Auth password").fill("pw-never-shown-7")
    await page.get_by_role("button", name="Create endpoint").click()
    await page.wait_for_selector("#e-rateLimitPerSecond")
    assert "greater than 0" in await page.locator("#e-rateLimitPerSecond").inner_text()

    await page.get_by_label("Rate limit (messages per second)").fill("25")
    await page.get_by_label("Basic Auth password").fill("pw-never-shown-7")
    await page.get_by_label("Basic Auth user").fill("hookuser")
    await page.get_by_label("Mask IP addresses").check()
    await page.get_by_role("button", name="Create endpoint").click()
    await page.wait_for_url("**/console/endpoints/*?notice=created")
    await console.check_source()
    (made,) = await server.services.endpoints.list_all()
    assert (made.name, made.flow, made.webhook_url) == ("support-bot", "order-help", receiver.url)
    assert made.rate_limit_per_second == 25
    assert made.mask_ip_addresses is True
    assert made.has_webhook_password
    assert made.webhook_user == "hookuser"

    # Editing: a bad value is refused next to its field; a good one saved; the password kept.
    await page.get_by_label("Session timeout (seconds)").fill("soon")
    await page.get_by_role("button", name="Save changes").click()
    await page.wait_for_selector("#e-sessionTimeoutSeconds")
    await page.get_by_label("Session timeout (seconds)").fill("600")
    await page.get_by_label("Locale").fill("en-GB")
    await page.get_by_role("button", name="Save changes").click()
    await page.wait_for_url("**?notice=saved")
    edited = await server.services.endpoints.get(made.id)
    assert edited.session_timeout_seconds == 600
    assert edited.locale == "en-GB"
    assert edited.has_webhook_password
    assert edited.rate_limit_per_second == 25

    await console.visit("/?q=support")
    assert await page.get_by_role("link", name="support-bot").count() == 1
    await console.visit("/?q=nothing-like-it")
    assert "No endpoint matches" in await page.content()


async def test_api_key_is_shown_once_and_can_be_revoked(
    browser: Any, server: RunningServer, receiver: Receiver
) -> None:
    """A new API key appears once with a copy button and a warning, works at the ingress,
    is listed afterwards by prefix only (with created / last used), and stops working when
    revoked after confirmation. Enabling signing shows its secret once."""
    ep = await server.create_endpoint(
        name="keyed", flow="echo", webhookUrl=receiver.url, authMethod="apiKey"
    )
    console = await open_console(browser, server)
    page = console.page
    await console.visit(f"/console/endpoints/{ep['id']}/keys")
    await page.get_by_label("Name of a new key").fill("crm")
    await page.get_by_role("button", name="Create key").click()
    key = (await page.locator("#new-key").inner_text()).strip()
    assert key.startswith("fhk_")
    assert "shown this once" in await page.content()
    assert await page.get_by_role("button", name="Copy", exact=True).count() == 1
    console.secrets.add(key)
    await console.check_source(allow=key)

    status, _ = await server.post_message(
        ep, {"userId": "u", "sessionId": "s", "text": "hi"}, key=key
    )
    assert status == 202
    await receiver.wait_for(1)
    await console.visit(f"/console/endpoints/{ep['id']}/keys")  # the key is not shown again
    row = page.get_by_role("row", name="crm")
    assert key[:8] in await row.inner_text()

    page.once("dialog", lambda dialog: dialog.accept())
    await row.get_by_role("button", name="Revoke").click()
    await page.wait_for_url("**?notice=revoked")
    status, _ = await server.post_message(
        ep, {"userId": "u", "sessionId": "s", "text": "hi"}, key=key
    )
    assert status == 401

    await page.get_by_role("button", name="Enable signing").click()
    secret = (await page.locator("#new-secret").inner_text()).strip()
    assert secret.startswith("whsec_")
    console.secrets.add(secret)
    await console.check_source(allow=secret)
    await console.visit(f"/console/endpoints/{ep['id']}/keys")
    assert "grace period" in await page.content()
