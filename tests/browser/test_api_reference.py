"""The console's API reference works offline: drawn on the server from the app's own
OpenAPI document, loading nothing from anywhere but this server."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import BROWSER_LOOP
from tests.browser.console import open_console
from tests.support.server import RunningServer

pytestmark = BROWSER_LOOP


async def test_api_reference_lists_every_operation_without_leaving_the_server(
    browser: Any, server: RunningServer
) -> None:
    """The main navigation leads to the API reference; it lists every operation of
    /openapi.json (e.g. POST /api/v1/endpoints with its summary, admin auth, its body's
    schema, linked to that schema's properties, and its 201), and the page requests
    nothing from another origin (it works offline, unlike Swagger UI at /docs)."""
    console = await open_console(browser, server)
    page = console.page
    elsewhere: list[str] = []
    page.on(
        "request",
        lambda r: None if r.url.startswith(server.base_url) else elsewhere.append(r.url),
    )
    await page.get_by_role("link", name="API", exact=True).click()
    await page.wait_for_url(server.base_url + "/console/api")
    await page.wait_for_load_state("load")
    await console.check_source()
    assert elsewhere == []

    status, doc = await server.api("GET", "/openapi.json")
    assert status == 200
    listed = await page.locator("article.operation h3").all_inner_texts()
    expected = [
        f"{method.upper()} {path}"
        for path, item in doc["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    ]
    assert sorted(" ".join(t.split()) for t in listed) == sorted(expected)

    create = page.locator("article.operation").filter(
        has=page.get_by_role("heading", name="POST /api/v1/endpoints", exact=True)
    )
    text = await create.inner_text()
    operation = doc["paths"]["/api/v1/endpoints"]["post"]
    assert operation["summary"] in text
    assert "adminToken" in text
    body_ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body_schema = body_ref.rsplit("/", 1)[-1]
    assert (
        "201"
        in await create.get_by_role(
            "table", name="Responses of POST /api/v1/endpoints"
        ).inner_text()
    )
    await create.get_by_role("link", name=body_schema, exact=True).click()
    schema = page.locator(f"#schema-{body_schema.lower()}")
    await schema.get_by_role("heading", name=body_schema, exact=True).wait_for()
    assert "flow" in await schema.get_by_role("table").inner_text()
    assert page.url.endswith(f"#schema-{body_schema.lower()}")
