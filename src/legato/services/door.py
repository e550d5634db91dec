"""The one door: everything a front end (the CLI, the API, the web UI, the daemon) may ask of
a project, for one actor.

A ``Door`` hands out the services bound to its actor (``runs``, ``catalog``, ``automation``,
``project``, ``presence``, ``accounts``, ``audit``, ``secrets``, ``overview``, ``alerts``,
``lineage``, ``monitoring``, ``resources``, ``assets``, ``checks``, ``materialize``) and never
the workspace or its store, so every read and command passes the gate of
``legato.services.gate`` with who is acting. ``signin`` is the one service without a gate: it
turns credentials into actors, and ``sso`` (single sign-on) with it, which turns an identity
provider's word into a session.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from legato.services.accounts import Accounts
from legato.services.actor import Actor
from legato.services.alerting import Alerts
from legato.services.assets_service import Assets
from legato.services.audit_service import AuditTrail
from legato.services.automation_service import Automation
from legato.services.catalog import Catalog
from legato.services.checks_service import Checks
from legato.services.lineage_service import Lineage
from legato.services.materialize_service import Materialize
from legato.services.monitoring import Monitoring
from legato.services.overview_service import Overview
from legato.services.presence import Presence
from legato.services.project import ProjectService
from legato.services.resources_service import ResourcesService
from legato.services.run_service import Runs
from legato.services.secrets_service import Secrets
from legato.services.signin import SignIn
from legato.services.single_sign_on import SingleSignOn

if TYPE_CHECKING:
    from legato.clock import Clock
    from legato.config import ProjectConfig
    from legato.domain.records import RunRecord
    from legato.loader import Project
    from legato.services.driving import Fleet
    from legato.services.workspace import Workspace


class Door:
    """The services of one workspace for ``actor``.

    ``on_run`` hears of every run queued through this door (None: something else changed
    that may let queued runs start): inside ``legato up`` it wakes the daemon so the run
    starts at once; under ``legato web`` alone, a separate scheduler polls the queue.
    """

    def __init__(
        self,
        ws: Workspace,
        actor: Actor,
        *,
        on_run: Callable[[RunRecord | None], None] | None = None,
    ) -> None:
        self._ws = ws
        self.actor = actor
        self.on_run: Callable[[RunRecord | None], None] = on_run or (lambda run: None)
        self.runs = Runs(ws, actor)
        self.automation = Automation(ws, actor)
        self.catalog = Catalog(ws, actor, self.automation)
        self.project = ProjectService(ws, actor)
        self.presence = Presence(ws, actor)
        self.signin = SignIn(ws)
        self.sso = SingleSignOn(ws, self.signin)
        self.accounts = Accounts(ws, actor)
        self.audit = AuditTrail(ws, actor)
        self.overview = Overview(ws, actor)
        self.secrets = Secrets(ws, actor)
        self.alerts = Alerts(ws, actor)
        self.lineage = Lineage(ws, actor)
        self.checks = Checks(ws, actor)
        self.monitoring = Monitoring(ws, actor)
        self.resources = ResourcesService(ws, actor)
        self.assets = Assets(ws, actor)
        self.materialize = Materialize(ws, actor)

    @property
    def clock(self) -> Clock:
        """The time every service here reads."""
        return self._ws.clock

    def as_actor(
        self, actor: Actor, *, on_run: Callable[[RunRecord | None], None] | None = None
    ) -> Door:
        """The same services for another actor (and ``on_run`` listener, if given)."""
        return Door(self._ws, actor, on_run=on_run or self.on_run)

    def queued(self, run: RunRecord) -> RunRecord:
        """Tell whoever starts runs about ``run``; returns it."""
        self.on_run(run)
        return run

    def fleet(self, *, owner: str, max_runs: int, say: Callable[[str], None]) -> Fleet:
        """The runs a daemon drives (see ``legato.services.driving.Fleet``)."""
        from legato.services.driving import Fleet

        return Fleet(self._ws, self.actor, owner=owner, max_runs=max_runs, say=say)

    def close(self) -> None:
        """Stop the workspace's workers and close its store."""
        self._ws.close()

    def __enter__(self) -> Door:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_door(project_dir: str, actor: Actor, *, clock: Clock | None = None) -> Door:
    """A door to the project in ``project_dir`` (its legato.toml) for ``actor``."""
    from legato.services.workspace import Workspace

    ws = Workspace(project_dir) if clock is None else Workspace(project_dir, clock=clock)
    return ws.door(actor)


def open_given(config: ProjectConfig, actor: Actor, project: Project | None = None) -> Door:
    """A door to a project whose settings are ``config`` as given (not read from disk), and
    whose pipelines are ``project``'s, already imported, when one is given (else loaded
    from ``config.modules``): how ``legato.testing`` runs pipelines on a store of its own."""
    from legato.services.workspace import Workspace

    return Workspace.of(config, project).door(actor)


__all__ = ["Door", "open_door", "open_given"]
