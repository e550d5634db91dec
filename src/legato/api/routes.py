"""The REST API's routes put on an app: every area under ``/api/v1``, errors as JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Depends, FastAPI

from legato.api import (
    alert_routes,
    asset_routes,
    audit_routes,
    check_routes,
    code_routes,
    hook_routes,
    http_errors,
    materialize_routes,
    operation_routes,
    overview_routes,
    pipeline_routes,
    resource_routes,
    run_routes,
)

if TYPE_CHECKING:
    from legato.config import ProjectConfig
    from legato.services.door import Door

API_PREFIX = "/api/v1"


def install(app: FastAPI, door: Door, settings: ProjectConfig) -> None:
    """Add every API route to ``app``, with its error answers and input checks
    (``settings``: the project's, read once by the app's maker)."""
    http_errors.install(app)
    for make in (
        pipeline_routes.router,
        run_routes.router,
        operation_routes.router,
        audit_routes.router,
        overview_routes.router,
        alert_routes.router,
        code_routes.router,
        resource_routes.router,
        asset_routes.router,
        materialize_routes.router,
        check_routes.router,
    ):
        app.include_router(
            make(door), prefix=API_PREFIX, dependencies=[Depends(http_errors.storable_input)]
        )
    # The webhook checks its caller's token before it reads the body, then the body's text.
    app.include_router(
        hook_routes.router(door, settings.webhook_per_minute), prefix=API_PREFIX
    )
