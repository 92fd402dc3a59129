"""The admin console: server-rendered pages at ``/``, signed in with the admin token.

Every page calls the same services as the admin API (``EndpointService``,
``DeliveryService``, ``Insights``, the inbox): the console adds screens, not rules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.staticfiles import StaticFiles

from flowhook.console import (
    pages_api,
    pages_conversations,
    pages_deliveries,
    pages_endpoints,
    pages_overview,
    signin,
)
from flowhook.console.web import ROUTES, Console

if TYPE_CHECKING:
    from fastapi import FastAPI

    from flowhook.services import Services

# Importing the page modules registers their routes.
_PAGES = (pages_api, pages_conversations, pages_deliveries, pages_endpoints, pages_overview)


def install(app: FastAPI, services: Services) -> None:
    """Serve the console on ``app``: pages, sign-in and the static files."""
    app.state.console = Console(services)
    app.router.routes.extend(signin.ROUTES)
    app.router.routes.extend(ROUTES)
    app.mount(
        "/console/static",
        StaticFiles(packages=[("flowhook.console", "static")]),
        name="console-static",
    )
    app.router.routes.append(pages_overview.NOT_FOUND)  # after the static files
