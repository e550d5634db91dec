"""The project's resources and settings under ``/api/v1``: the declared resources
(``resources.read``), their health check (``resources.check``) and the configuration in
effect (``config.read``), every secret masked."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body
from pydantic import BaseModel, Field

from legato.api.http_errors import ERRORS
from legato.api.schemas import Body as BodyModel
from legato.api.schemas import Record
from legato.services.door import Door

#: A resource's name as a check names it (``[resources.NAME]``).
ResourceName = Annotated[str, Field(min_length=1, max_length=200)]


class ResourceOut(Record):
    """A declared resource: its settings as written in legato.toml, secrets masked."""

    name: str
    kind: str
    settings: dict[str, Any]
    pool: str | None = Field(description="the pool whose slots its tasks take")
    tasks: list[str] = Field(description="the tasks asking for it, as pipeline.task")


class CheckIn(BodyModel):
    """Which resources to check: those named, or every one when ``names`` is left out."""

    names: list[ResourceName] | None = Field(default=None, max_length=1000)


class CheckOut(Record):
    """How checking one resource went: ``detail`` says what was checked, or why it failed
    (one line, its secrets masked)."""

    name: str
    kind: str
    ok: bool
    detail: str
    seconds: float


class ConfigOut(BaseModel):
    """The settings in effect (``legato config --json``), every secret masked."""

    file: str
    environment: str = Field(description="the environment chosen ([env.NAME]; default: none)")
    environments: list[str] = Field(description="every environment legato.toml defines")
    settings: dict[str, Any] = Field(description="legato.toml's tables as Legato uses them")


def router(ctx: Door) -> APIRouter:
    """The /resources and /config routes over ``ctx``."""
    r = APIRouter(responses=ERRORS)

    @r.get(
        "/resources", response_model=list[ResourceOut], tags=["resources"],
        summary="List resources",
    )
    def list_resources() -> list[ResourceOut]:
        """Every ``[resources.NAME]`` of the server's environment, by name, with the tasks
        that ask for it by parameter."""
        return [ResourceOut.of(x) for x in ctx.resources.describe()]

    @r.post(
        "/resources/check", response_model=list[CheckOut], tags=["resources"],
        summary="Check resources",
    )
    def check(body: Annotated[CheckIn | None, Body()] = None) -> list[CheckOut]:
        """Open each resource (or those ``names``) in the server's process, run its kind's
        check and close it again, as ``legato resources check`` does. A secret a resource's
        settings reference is read as a task reads it: the audit trail records the read."""
        names = body.names if body is not None else None
        return [CheckOut.of(x) for x in ctx.resources.check(names)]

    @r.get("/config", response_model=ConfigOut, tags=["config"], summary="Settings in effect")
    def config() -> ConfigOut:
        """legato.toml with the server's environment laid over it, the environment variables
        applied and the defaults filled in, every secret masked (``legato config``)."""
        return ConfigOut(**ctx.project.effective_config())

    return r
