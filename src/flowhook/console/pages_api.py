"""The API reference: the app's OpenAPI document as a page that works offline."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from flowhook.console import apiref
from flowhook.console.web import Page, page


@page("/console/api")
async def api_reference(pg: Page) -> Response:
    doc: dict[str, Any] = pg.request.app.openapi()
    components = apiref.schemas(doc)
    return pg.render(
        "api.html",
        info=doc.get("info") or {},
        sections=apiref.sections(doc),
        schemas=components,
        known={s.name for s in components},
        anchor=apiref.anchor,
        title="API reference",
    )
