"""Backfills for every front end: recorded as ranges of partitions (their runs are made by
the daemon a few at a time), read with their progress and keys, paused, resumed, canceled.
Part of ``door.automation`` (``automation_service.Automation``), with what it shares.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from legato.definitions.errors import ParamError
from legato.domain.states import BackfillState, RunState
from legato.services.actor import Actor
from legato.services.driving import RunDriving
from legato.services.gate import Service, action
from legato.services.run_creation import check_params_size
from legato.services.secrets_service import seal_params
from legato.services.service_errors import Conflict, NotFoundError, ServiceError

if TYPE_CHECKING:
    from legato.definitions.partitioning import PartitionSet
    from legato.domain.records import BackfillRecord
    from legato.services.backfill_views import BackfillKeysPage, BackfillView
    from legato.services.workspace import Workspace
    from legato.store.store import Store

#: Where backfill runs go in the queue relative to their pipeline's own runs: behind.
BACKFILL_PRIORITY_OFFSET = -1


class AutomationCore(Service):
    """What automation's operations share: the workspace, its store and its clock."""

    def __init__(self, ws: Workspace, actor: Actor) -> None:
        super().__init__(actor)
        self.ws = ws

    @property
    def store(self) -> Store:
        return self.ws.store

    def _now(self) -> datetime:
        return self.ws.clock()


class Backfills(AutomationCore):
    """Backfills (see the module docstring), for one actor."""

    @action("backfills.create", command=True)
    def create_backfill(
        self,
        pipeline: str,
        *,
        first: str | None = None,
        last: str | None = None,
        keys: Sequence[str] = (),
        all_partitions: bool = False,
        max_concurrent: int = 2,
        priority: int | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> BackfillRecord:
        """Record a backfill of a range (``first``..``last``) or a list of partition keys.

        Without ``all_partitions`` only partitions never run or whose newest run failed or
        was canceled are included. Runs are created by the daemon, a few at a time.
        """
        from legato.domain.backfill_keys import BackfillKeys
        from legato.domain.ids import new_run_id
        from legato.domain.records import BackfillRecord

        pipe = self._sight().pipeline(pipeline)
        parts = pipe.automation.partitions
        if parts is None:
            raise ServiceError(f"pipeline {pipe.name!r} has no partitions to backfill")
        if max_concurrent < 1:
            raise ServiceError("max concurrent backfill runs must be at least 1")
        now = self._now()
        if keys and (first or last):
            raise ServiceError("give either a range (--from/--to) or keys, not both")
        if not keys and (not first or not last):
            raise ServiceError("give a range with --from and --to, or partition keys")
        # The same check as a single run's, so run, submit and backfill agree on a key.
        given = list(keys) if keys else [first or "", last or ""]
        checked = [self.ws.check_partition(pipe, k, now) or k for k in given]
        try:
            span = checked if keys else parts.range(checked[0], checked[1], now)
        except ValueError as exc:
            raise ServiceError(f"pipeline {pipe.name!r}: partitions: {exc}") from None
        done: Collection[str] = ()
        if not all_partitions:
            redo = {RunState.FAILED.value, RunState.CANCELED.value}
            done = self.store.backfills.partitions_in_states(
                pipe.name, {s.value for s in RunState} - redo
            )
        # A range is kept as its stretches (positions in it), not key by key.
        chosen = (
            BackfillKeys.named(k for k in span if k not in done)
            if keys
            else BackfillKeys.within(
                checked[0], checked[1], (i for i, k in enumerate(span) if k not in done)
            )
        )
        if not chosen.total:
            raise Conflict(
                f"pipeline {pipe.name!r}: nothing to backfill: every partition in the range has "
                "a run that succeeded or is under way (use --all to run them again)"
            )
        try:
            values = pipe.params_to_json(pipe.validate_params(params or {}))
        except ParamError as exc:
            raise ServiceError(str(exc), exc.field) from None
        check_params_size(self.ws, values)
        prio = pipe.automation.priority + BACKFILL_PRIORITY_OFFSET if priority is None else priority
        backfill_id = "bf" + new_run_id(now)
        # Each run it makes takes its own copy of these (record_run, with backfill_id).
        seal_params(self.ws, pipe, values, f"backfill/{backfill_id}", by=str(self.actor))
        record = BackfillRecord(
            id=backfill_id,
            pipeline=pipe.name,
            state=BackfillState.RUNNING,
            keys=chosen,
            next_index=0,
            max_concurrent=max_concurrent,
            priority=prio,
            params=values,
            created_at=now,
            updated_at=now,
        )
        return self.store.backfills.create_backfill(record)

    @action("backfills.read")
    def backfills(self, *, pipeline: str | None = None, active: bool = False) -> list[BackfillView]:
        """Backfills newest first, with their progress."""
        return [
            self._view(b)
            for b in self.store.backfills.list_backfills(
                pipeline=pipeline, active=active, pipelines=self._sight().pipelines()
            )
        ]

    @action("backfills.read")
    def backfill(self, backfill_id: str) -> BackfillView:
        """One backfill (id or unique prefix) with its progress."""
        return self._view(self._backfill(backfill_id))

    @action("backfills.read")
    def backfill_keys(
        self, backfill_id: str, *, offset: int = 0, limit: int = 100
    ) -> BackfillKeysPage:
        """A backfill's partition keys ``offset``.. (in the order its runs are made), each
        with the state of its run, ``limit`` at most."""
        from legato.definitions.partitioning import PartitionError
        from legato.services.backfill_views import (
            MAX_KEYS_PAGE,
            NOT_STARTED,
            BackfillKey,
            BackfillKeysPage,
            keys_page,
        )

        if not 1 <= limit <= MAX_KEYS_PAGE:
            raise ServiceError(f"limit must be between 1 and {MAX_KEYS_PAGE}", "limit")
        if offset < 0:
            raise ServiceError("offset must not be negative", "offset")
        b = self._backfill(backfill_id)
        try:
            keys = keys_page(b.keys, self._partitions_of(b.pipeline), self._now(), offset, limit)
        except PartitionError as exc:
            raise Conflict(f"backfill {b.id}: its partitions no longer resolve: {exc}") from None
        runs = self.store.backfills.backfill_key_runs(b.id, keys)
        found = tuple(BackfillKey(k, *runs.get(k, (NOT_STARTED, None))) for k in keys)
        after = offset + limit
        return BackfillKeysPage(found, b.keys.total, after if after < b.keys.total else None)

    def _backfill(self, backfill_id: str) -> BackfillRecord:
        from legato.domain.records import NotFound

        try:
            return self.store.backfills.get_backfill(
                backfill_id, pipelines=self._sight().pipelines()
            )
        except NotFound as exc:
            raise NotFoundError(str(exc)) from None

    def _partitions_of(self, pipeline: str) -> PartitionSet | None:
        pipe = self.ws.project.pipelines.get(pipeline)
        return None if pipe is None else pipe.automation.partitions

    def _view(self, b: BackfillRecord) -> BackfillView:
        from legato.services.backfill_views import view

        runs = self.store.backfills.backfill_run_states(b.id)
        return view(b, runs, self._partitions_of(b.pipeline), self._now())

    @action("backfills.change", command=True)
    def set_backfill_state(self, backfill_id: str, state: BackfillState) -> BackfillView:
        """Pause, resume or cancel a backfill. Canceling also cancels its unfinished runs."""
        from legato.domain.states import InvalidTransition

        view = self.backfill(backfill_id)
        try:
            self.store.backfills.update_backfill(view.record.id, self._now(), state=state)
        except InvalidTransition as exc:
            raise Conflict(f"backfill {view.record.id}: {exc}") from None
        if state == BackfillState.CANCELED:
            for run in self.store.queue.queued_runs():
                if run.backfill_id == view.record.id:
                    RunDriving(self.ws).cancel(run.id)
            for run in self.store.runs.runs_in_state(RunState.RUNNING):
                if run.backfill_id == view.record.id:
                    self.store.runs.request_cancel(run.id, self._now())
        return self.backfill(view.record.id)
