"""The HTTP application: the REST API under ``/api/v1`` (OpenAPI at ``/api/v1/openapi.json``,
docs at ``/api/docs``) and the web UI at ``/``, over one workspace's services.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from fastapi import Depends, FastAPI
from fastapi.responses import RedirectResponse

from legato import __version__
from legato.api import errors, hooks, operations, pipelines, runs
from legato.api.context import ApiContext

if TYPE_CHECKING:
    from legato.services.runs import Workspace
    from legato.store.records import RunRecord

API_PREFIX = "/api/v1"


def create_app(
    ws: Workspace,
    *,
    on_run: Callable[[RunRecord | None], None] | None = None,
    web: bool = True,
) -> FastAPI:
    """The app over ``ws``; ``on_run`` hears of every run the API queues (see ApiContext)."""
    from legato.services.automation import Automation
    from legato.services.catalog import Catalog

    ws.project  # noqa: B018 - load the code once, before requests arrive on several threads
    auto = Automation(ws)
    auto.ensure_triggers()
    ctx = ApiContext(ws, auto, Catalog(ws, auto), on_run or (lambda run: None))
    app = FastAPI(
        title="Legato",
        version=__version__,
        description="Run, watch and operate Legato pipelines.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    errors.install(app)
    for make in (pipelines.router, runs.router, operations.router, hooks.router):
        app.include_router(
            make(ctx), prefix=API_PREFIX, dependencies=[Depends(errors.storable_input)]
        )
    app.state.ctx = ctx
    if web:
        from legato.web.pages import mount

        mount(app, ctx)
    else:

        @app.get("/", include_in_schema=False)
        def root() -> RedirectResponse:
            return RedirectResponse("/api/docs")

    return app
