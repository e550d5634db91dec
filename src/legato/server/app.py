"""The HTTP application: the REST API under ``/api/v1`` (OpenAPI at ``/api/v1/openapi.json``,
docs at ``/api/docs``) and the web UI at ``/``, over one workspace's services.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from legato import __version__
from legato.api import routes
from legato.api.routes import API_PREFIX
from legato.services.door import Door

if TYPE_CHECKING:
    from legato.domain.records import RunRecord
    from legato.services.runs import Workspace

__all__ = ["API_PREFIX", "create_app"]


def create_app(
    ws: Workspace,
    *,
    on_run: Callable[[RunRecord | None], None] | None = None,
    web: bool = True,
) -> FastAPI:
    """The app over ``ws``; ``on_run`` hears of every run the API queues (see Door)."""
    from legato.services.automation import Automation
    from legato.services.catalog import Catalog

    ws.project  # noqa: B018 - load the code once, before requests arrive on several threads
    auto = Automation(ws)
    auto.ensure_triggers()
    door = Door(ws, auto, Catalog(ws, auto), on_run or (lambda run: None))
    app = FastAPI(
        title="Legato",
        version=__version__,
        description="Run, watch and operate Legato pipelines.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    routes.install(app, door)
    if web:
        from legato.web.pages import mount

        mount(app, door)
    else:

        @app.get("/", include_in_schema=False)
        def root() -> RedirectResponse:
            return RedirectResponse("/api/docs")

    return app
