"""The one door: everything a front end (the CLI, the API, the web UI, the daemon) may ask of
a project, for one actor.

A ``Door`` hands out the services bound to its actor (``runs``, ``catalog``, ``automation``,
``project``, ``presence``, ``accounts``, ``audit``, ``secrets``, ``overview``, ``alerts``,
``lineage``, ``monitoring``, ``resources``, ``assets``, ``checks``, ``materialize``,
``partitions``, ``retention``) and never the workspace or its store, so every read and
command passes the gate of ``legato.services.gate`` with who is acting. ``signin`` is the
one service without a gate: it turns credentials into actors, and ``sso`` (single sign-on)
with it, which turns an identity provider's word into a session.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING

from legato.services.actor import Actor

if TYPE_CHECKING:
    from legato.clock import Clock
    from legato.config import ProjectConfig
    from legato.domain.records import RunRecord
    from legato.loader import Project
    from legato.services.accounts import Accounts
    from legato.services.alerting import Alerts
    from legato.services.assets_service import Assets
    from legato.services.audit_service import AuditTrail
    from legato.services.automation_service import Automation
    from legato.services.catalog import Catalog
    from legato.services.checks_service import Checks
    from legato.services.driving import Fleet
    from legato.services.lineage_service import Lineage
    from legato.services.materialize_service import Materialize
    from legato.services.monitoring import Monitoring
    from legato.services.overview_service import Overview
    from legato.services.partitions_service import Partitions
    from legato.services.presence import Presence
    from legato.services.project import ProjectService
    from legato.services.resources_service import ResourcesService
    from legato.services.retention_service import Retention
    from legato.services.run_service import Runs
    from legato.services.secrets_service import Secrets
    from legato.services.signin import SignIn
    from legato.services.single_sign_on import SingleSignOn
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

    # Each service is made (and its module imported) when first asked for: a command uses
    # one or two of them, and importing them all cost every command ~0.1 s of its start.

    @cached_property
    def runs(self) -> Runs:
        from legato.services.run_service import Runs

        return Runs(self._ws, self.actor)

    @cached_property
    def automation(self) -> Automation:
        from legato.services.automation_service import Automation

        return Automation(self._ws, self.actor)

    @cached_property
    def catalog(self) -> Catalog:
        from legato.services.catalog import Catalog

        return Catalog(self._ws, self.actor, self.automation)

    @cached_property
    def project(self) -> ProjectService:
        from legato.services.project import ProjectService

        return ProjectService(self._ws, self.actor)

    @cached_property
    def presence(self) -> Presence:
        from legato.services.presence import Presence

        return Presence(self._ws, self.actor)

    @cached_property
    def signin(self) -> SignIn:
        from legato.services.signin import SignIn

        return SignIn(self._ws)

    @cached_property
    def sso(self) -> SingleSignOn:
        from legato.services.single_sign_on import SingleSignOn

        return SingleSignOn(self._ws, self.signin)

    @cached_property
    def accounts(self) -> Accounts:
        from legato.services.accounts import Accounts

        return Accounts(self._ws, self.actor)

    @cached_property
    def audit(self) -> AuditTrail:
        from legato.services.audit_service import AuditTrail

        return AuditTrail(self._ws, self.actor)

    @cached_property
    def overview(self) -> Overview:
        from legato.services.overview_service import Overview

        return Overview(self._ws, self.actor)

    @cached_property
    def secrets(self) -> Secrets:
        from legato.services.secrets_service import Secrets

        return Secrets(self._ws, self.actor)

    @cached_property
    def alerts(self) -> Alerts:
        from legato.services.alerting import Alerts

        return Alerts(self._ws, self.actor)

    @cached_property
    def lineage(self) -> Lineage:
        from legato.services.lineage_service import Lineage

        return Lineage(self._ws, self.actor)

    @cached_property
    def checks(self) -> Checks:
        from legato.services.checks_service import Checks

        return Checks(self._ws, self.actor)

    @cached_property
    def monitoring(self) -> Monitoring:
        from legato.services.monitoring import Monitoring

        return Monitoring(self._ws, self.actor)

    @cached_property
    def resources(self) -> ResourcesService:
        from legato.services.resources_service import ResourcesService

        return ResourcesService(self._ws, self.actor)

    @cached_property
    def retention(self) -> Retention:
        from legato.services.retention_service import Retention

        return Retention(self._ws, self.actor)

    @cached_property
    def partitions(self) -> Partitions:
        from legato.services.partitions_service import Partitions

        return Partitions(self._ws, self.actor)

    @cached_property
    def assets(self) -> Assets:
        from legato.services.assets_service import Assets

        return Assets(self._ws, self.actor)

    @cached_property
    def materialize(self) -> Materialize:
        from legato.services.materialize_service import Materialize

        return Materialize(self._ws, self.actor)

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
