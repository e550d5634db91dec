"""The project as front ends see it: its settings, its pipelines and the modules that failed to
load; starting its workers and recording what was loaded."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from legato.services.actor import Actor
from legato.services.gate import Service, action

if TYPE_CHECKING:
    from legato.config import ProjectConfig
    from legato.definitions.pipeline import Pipeline
    from legato.loader import LoadError
    from legato.services.workspace import Workspace


class ProjectService(Service):
    """A workspace's project, for one actor."""

    def __init__(self, ws: Workspace, actor: Actor) -> None:
        super().__init__(actor)
        self._ws = ws

    @action("project.read")
    def settings(self) -> ProjectConfig:
        """What legato.toml says, defaults filled in."""
        return self._ws.config

    @action("config.read")
    def effective_config(self) -> dict[str, Any]:
        """The settings in effect, secrets masked (``legato config``): the file they come
        from, the environment chosen, those defined, and legato.toml's tables as Legato uses
        them (see ``legato.security.settings_view``)."""
        import os

        from legato.config import CONFIG_FILE
        from legato.security.settings_view import effective_settings

        config = self._ws.config
        return {
            "file": str(config.root / CONFIG_FILE),
            "environment": config.environment,
            "environments": list(config.environments),
            "settings": effective_settings(config, os.environ),
        }

    @action("pipelines.read")
    def pipelines(self) -> dict[str, Pipeline]:
        """The loaded pipelines the actor sees, by name (this imports the project's code
        on first use)."""
        pipes = self._ws.project.pipelines
        return dict(self._sight().keep(pipes.items(), lambda item: item[0]))

    @action("pipelines.read")
    def pipeline(self, name: str) -> Pipeline:
        """The pipeline called ``name``, or UnknownPipeline naming close matches."""
        return self._sight().pipeline(name)

    @action("pipelines.read")
    def load_errors(self) -> list[LoadError]:
        """The project's modules that failed to import, with their errors (to actors that
        see every pipeline, as ``Catalog.load_errors``)."""
        return list(self._ws.project.errors) if self._sight().whole else []

    @action("project.reload", command=True)
    def refresh(self) -> str | None:
        """Load the code again if it changed on disk; a line saying what was found, or None."""
        done = self._ws.refresh()
        return done.describe() if done is not None else None

    @action("project.reload")
    def on_reload(self, listener: Callable[[str], None]) -> None:
        """Hear a line (see ``refresh``) each time the code is loaded again, from any thread."""
        self._ws.on_reload(lambda done: listener(done.describe()))

    @action("project.start", command=True)
    def start_workers(self) -> None:
        """Start the executor now: its workers fork before anything else is imported."""
        self._ws.executor()

    @action("project.register", command=True)
    def register(self) -> None:
        """Record in the store what loading the project found (pipelines, import errors)."""
        self._ws.save_location()

    @action("project.register", command=True)
    def apply_pools(self) -> None:
        """Make the store's pools those of legato.toml."""
        self._ws.sync_pools()
