"""The REST API's routes put on an app: every area under ``/api/v1``, errors as JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Depends, FastAPI

from legato.api import errors, hooks, operations, pipelines, runs

if TYPE_CHECKING:
    from legato.services.door import Door

API_PREFIX = "/api/v1"


def install(app: FastAPI, door: Door) -> None:
    """Add every API route to ``app``, with its error answers and input checks."""
    errors.install(app)
    for make in (pipelines.router, runs.router, operations.router, hooks.router):
        app.include_router(
            make(door), prefix=API_PREFIX, dependencies=[Depends(errors.storable_input)]
        )
