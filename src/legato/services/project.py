"""The project as front ends see it: its settings, its pipelines and the modules that failed to
load; starting its workers and recording what was loaded."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from legato.services.actor import Actor
from legato.services.gate import Service, action

if TYPE_CHECKING:
    from legato.config import ProjectConfig
    from legato.definitions.pipeline import Pipeline
    from legato.loader import LoadError
    from legato.services.workspace import Workspace


@dataclass(frozen=True)
class CodeState:
    """The code a project serves now, as a reload changes it."""

    digest: str  # the start of the hash of the code's files ("" when not known)
    loads: int  # how many times the code was loaded again since the first load
    loaded_at: datetime | None
    versions: dict[str, str]  # pipeline -> code version, of the pipelines the actor sees
    errors: tuple[LoadError, ...]  # modules that failed to load (see ``load_errors``)

    @property
    def key(self) -> str:
        """Changes whenever what a page shows of the code would: a reload, an error."""
        h = hashlib.sha256(f"{self.digest}\0{self.loads}".encode())
        for e in self.errors:
            h.update(f"\0{e.module}\0{e.message}".encode())
        return h.hexdigest()[:16]


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

    @action("pipelines.read")
    def code_state(self) -> CodeState:
        """The code served now: its digest, how often it was reloaded, each pipeline's code
        version and the modules that failed to load (the code's files are looked at first,
        at most four times a second whoever asks, so this is current under ``legato web``
        alone too)."""
        ws = self._ws
        ws.look()
        project = ws.project
        sight = self._sight()
        return CodeState(
            digest=project.fingerprint.digest[:12] if project.fingerprint is not None else "",
            loads=ws.loads,
            loaded_at=ws.loaded_at,
            versions={
                name: p.code_version
                for name, p in sight.keep(project.pipelines.items(), lambda item: item[0])
            },
            errors=tuple(project.errors) if sight.whole else (),
        )

    @action("project.reload")
    def code_folders(self) -> list[str]:
        """The folders the code was loaded from (what ``legato dev`` watches)."""
        return self._ws.code_folders()

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
