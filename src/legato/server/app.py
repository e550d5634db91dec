"""The HTTP application: the REST API under ``/api/v1`` (OpenAPI at ``/api/v1/openapi.json``,
docs at ``/api/docs``) and the web UI at ``/``, over one workspace's services.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from legato import __version__
from legato.api import routes
from legato.api.routes import API_PREFIX
from legato.server.limits import BodyLimit
from legato.services.door import Door

__all__ = ["API_PREFIX", "create_app"]


def create_app(door: Door, *, web: bool = True) -> FastAPI:
    """The app over ``door`` (whose ``on_run`` hears of every run the API queues)."""
    door.project.pipelines()  # load the code once, before requests arrive on several threads
    door.automation.ensure_triggers()
    app = FastAPI(
        title="Legato",
        version=__version__,
        description="Run, watch and operate Legato pipelines.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    # Outside every route and error handler: a body is bounded wherever it is read.
    app.add_middleware(BodyLimit, limit=door.project.settings().request_bytes)
    routes.install(app, door)
    if web:
        from legato.web.pages import mount

        mount(app, door)
    else:

        @app.get("/", include_in_schema=False)
        def root() -> RedirectResponse:
            return RedirectResponse("/api/docs")

    return app
