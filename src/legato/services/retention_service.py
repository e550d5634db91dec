"""Retention: letting go of old runs, with their task runs, attempts, events, logs and results.

``[retention] runs = "30d"`` (and ``failed_runs``, three times as long by default) in
legato.toml is the policy, with ``logs`` and ``results`` (as long as ``runs`` by default):
the logs and results of finished runs older than those go while the runs stay, each such
run marked so that readers say "pruned" (``store/retention_store.py``). Trigger events go
with their runs (a file trigger's stay: they are what tells a file already taken), and the
audit trail's rows after ``audit`` (a year by default, at least ``runs``), the chain kept
checkable from where they went (``store/audit_store.py``). `legato db prune`
applies it (or ``--older-than``) by hand. What
is always kept is the store's to say (``store/retention_store.py``): unfinished runs, the
newest run of each pipeline and of each partition, the run an unfinished re-run reads.

Runs go in small batches, each one short transaction: a daemon scheduling meanwhile waits
for one batch at most, never for the whole prune. A batch's rows go first, then its log
and result folders: a crash in between leaves folders no run points at, never a run
whose files are gone.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from legato.definitions.triggering import FileTrigger
from legato.domain.ids import run_folder
from legato.services.gate import Service, action, actor_entry
from legato.services.service_errors import ServiceError
from legato.store.audit_store import PRUNED
from legato.store.retention_store import LOGS_PRUNED, RESULTS_PRUNED, PrunedRun, Removed

if TYPE_CHECKING:
    from legato.results.result_store import ResultStore
    from legato.services.actor import Actor
    from legato.services.workspace import Workspace

#: Runs looked at and deleted per transaction.
BATCH = 500
#: How much longer than other runs a failed run is kept when ``failed_runs`` is not set.
FAILED_FACTOR = 3
#: How long the audit trail's rows are kept when ``audit`` is not set (or ``runs``, if longer).
AUDIT_DEFAULT = timedelta(days=365)


@dataclass(frozen=True)
class Policy:
    """Finished runs made more than ``runs`` ago go; failed ones after ``failed_runs``; the
    logs and results of the others after ``logs`` and ``results``."""

    runs: timedelta
    failed_runs: timedelta
    logs: timedelta
    results: timedelta
    audit: timedelta = AUDIT_DEFAULT

    @classmethod
    def of(
        cls,
        runs: timedelta,
        failed_runs: timedelta | None = None,
        *,
        logs: timedelta | None = None,
        results: timedelta | None = None,
        audit: timedelta | None = None,
    ) -> Policy:
        if runs <= timedelta(0):
            raise ServiceError("a retention period must be positive", "older_than")
        failed = runs * FAILED_FACTOR if failed_runs is None else failed_runs
        if failed < runs:
            raise ServiceError(
                "failed runs cannot be kept for less time than the others", "failed_older_than"
            )
        windows = {
            "logs": runs if logs is None else logs,
            "results": runs if results is None else results,
        }
        for name, window in windows.items():
            if not timedelta(0) < window <= runs:
                raise ServiceError(
                    f"{name} must be kept for a positive time, at most as long as runs", name
                )
        if audit is not None and audit <= timedelta(0):
            raise ServiceError("the audit trail must be kept for a positive time", "audit")
        kept = max(runs, AUDIT_DEFAULT) if audit is None else audit
        return cls(runs, failed, windows["logs"], windows["results"], kept)


@dataclass(frozen=True)
class PruneReport:
    """What a prune removed (or, with ``dry_run``, would remove)."""

    policy: Policy
    dry_run: bool
    removed: Removed = field(default_factory=Removed)
    oldest: datetime | None = None  # the oldest removed run's creation
    newest: datetime | None = None  # the newest removed run's creation
    by_pipeline: dict[str, int] = field(default_factory=dict)
    folders: int = 0  # log and result folders removed
    logs_pruned: int = 0  # runs kept whose logs were removed
    results_pruned: int = 0  # runs kept whose results were removed
    trigger_events: int = 0  # trigger events removed
    audit_entries: int = 0  # rows of the audit trail removed


class Retention(Service):
    """Applies a retention policy to the workspace's store, logs and results."""

    def __init__(self, ws: Workspace, actor: Actor) -> None:
        super().__init__(actor)
        self.ws = ws

    def policy(self) -> Policy | None:
        """The project's ``[retention]`` policy, None when it keeps everything."""
        cfg = self.ws.config
        if cfg.keep_runs is None:
            return None

        def window(seconds: float | None) -> timedelta | None:
            return None if seconds is None else timedelta(seconds=seconds)

        return Policy.of(
            timedelta(seconds=cfg.keep_runs),
            window(cfg.keep_failed_runs),
            logs=window(cfg.keep_logs),
            results=window(cfg.keep_results),
            audit=window(cfg.keep_audit),
        )

    @action("store.prune", command=True)
    def prune(
        self,
        policy: Policy | None = None,
        *,
        dry_run: bool = False,
        max_runs: int | None = None,
    ) -> PruneReport:
        """Remove what ``policy`` (by default the project's) lets go, ``max_runs`` runs at
        most; with ``dry_run``, only say what that would be."""
        chosen = policy or self.policy()
        if chosen is None:
            raise ServiceError(
                "no retention policy: set [retention] runs in legato.toml or give --older-than",
                "older_than",
            )
        now = self.ws.clock()
        store = self.ws.store.retention
        report = PruneReport(chosen, dry_run)
        after: str | None = None
        while max_runs is None or report.removed.runs < max_runs:
            size = BATCH if max_runs is None else min(BATCH, max_runs - report.removed.runs)
            found = store.prunable(
                before=now - chosen.runs,
                failed_before=now - chosen.failed_runs,
                limit=size,
                after=after,
            )
            if not found:
                break
            if dry_run:
                removed = store.count_children([r.id for r in found])
                after = found[-1].id
            else:
                removed = store.delete_runs([r.id for r in found])
                if not removed.runs:
                    break  # taken on by someone since: the next pass looks again
            report = self._add(report, found, removed)
            if not dry_run:
                report = replace(report, folders=report.folders + self._remove_files(found))
        logs = self._prune_files(LOGS_PRUNED, now - chosen.logs, dry_run, max_runs)
        results = self._prune_files(RESULTS_PRUNED, now - chosen.results, dry_run, max_runs)
        return replace(
            report,
            logs_pruned=logs,
            results_pruned=results,
            trigger_events=self._prune_trigger_events(now - chosen.runs, dry_run),
            audit_entries=self._prune_audit(now - chosen.audit, chosen.audit, dry_run),
        )

    def _prune_trigger_events(self, before: datetime, dry_run: bool) -> int:
        store = self.ws.store.retention
        keep = {
            (name, t.name)
            for name, pipe in self.ws.project.pipelines.items()
            for t in pipe.automation.triggers
            if isinstance(t, FileTrigger)
        }
        ids = store.trigger_events_prunable(before, keep)
        return len(ids) if dry_run else store.delete_trigger_events(ids)

    def _prune_audit(self, before: datetime, window: timedelta, dry_run: bool) -> int:
        audit = self.ws.store.audit
        if dry_run:
            return audit.count_before(before)
        detail = {"older_than": str(window)}
        entry = actor_entry(self.actor, PRUNED, "", "ok", detail, self.ws.audit_time())
        return audit.prune(before, entry)

    def _prune_files(self, kind: str, before: datetime, dry_run: bool, most: int | None) -> int:
        """Remove the logs or results (``kind``) of the runs made before ``before`` that
        stay; how many runs that was (or would be)."""
        store = self.ws.store.retention
        done = 0
        after: str | None = None
        what = "logs" if kind == LOGS_PRUNED else "results"
        while most is None or done < most:
            size = BATCH if most is None else min(BATCH, most - done)
            found = store.files_prunable(kind, before=before, limit=size, after=after)
            if not found:
                break
            done += len(found)
            if dry_run:
                after = found[-1].id
                continue
            results = self._results()
            for r in found:
                if kind == LOGS_PRUNED:
                    self._remove_logs(r)
                else:
                    results.delete_run(r.id)
            # After the files: a crash between leaves the run unmarked, and the next pass
            # removes (nothing) again and marks it.
            store.mark_pruned(
                [r.id for r in found], kind, self.ws.clock(), f"{what} removed by retention"
            )
        return done

    @staticmethod
    def _add(report: PruneReport, found: list[PrunedRun], removed: Removed) -> PruneReport:
        by_pipeline = dict(report.by_pipeline)
        for r in found:
            by_pipeline[r.pipeline] = by_pipeline.get(r.pipeline, 0) + 1
        return replace(
            report,
            removed=report.removed + removed,
            oldest=report.oldest or found[0].created_at,
            newest=found[-1].created_at,
            by_pipeline=by_pipeline,
        )

    def _remove_files(self, found: list[PrunedRun]) -> int:
        """Remove the runs' log and result folders; how many log folders there were."""
        results = self._results()
        removed = 0
        for r in found:
            removed += self._remove_logs(r)
            results.delete_run(r.id)
        return removed

    def _remove_logs(self, run: PrunedRun) -> int:
        logs = Path(self.ws.config.logs_dir)
        removed = 0
        for folder in dict.fromkeys((logs / run_folder(run.id), logs / run.id)):
            if folder.is_dir():
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        return removed

    def _results(self) -> ResultStore:
        from legato.results.result_store import ResultStore

        return ResultStore(self.ws.config.results_url)
