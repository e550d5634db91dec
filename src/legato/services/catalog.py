"""What the API and the web UI show: pipelines with their recent runs, a run with its tasks and
attempts, filtered pages of runs, health; and the operator's marks on a finished run's tasks.

Everything here reads through the store and the loaded project; nothing here starts runs.
"""

from __future__ import annotations

import inspect
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from legato import __version__
from legato.domain.states import InvalidTransition, RunState, TaskState, judge_mark
from legato.services.actor import Actor
from legato.services.automation_service import Automation, ScheduleView, TriggerView
from legato.services.check_steps import RUN_RESULTS, CheckStep, check_steps
from legato.services.gate import Service, action
from legato.services.run_service import Runs
from legato.services.service_errors import Conflict, NotFoundError, ServiceError

if TYPE_CHECKING:
    from legato.definitions.pipeline import Param, Pipeline
    from legato.domain.records import (
        AttemptRecord,
        DaemonRecord,
        EventRecord,
        RunRecord,
        TaskRunRecord,
    )
    from legato.services.code_changes import CodeChanges
    from legato.services.run_service import LogEntry
    from legato.services.workspace import Workspace

#: A daemon beats this often; one that missed three beats is taken for dead.
HEARTBEAT_EVERY = timedelta(seconds=5)
HEARTBEAT_DEAD_AFTER = HEARTBEAT_EVERY * 3
#: How many recent runs the pipelines overview shows per pipeline.
RECENT_RUNS = 20
#: Most runs one page of the runs list may hold.
MAX_PAGE = 500


@dataclass(frozen=True)
class PipelineOverview:
    """A pipeline as the overview lists it."""

    name: str
    description: str
    tags: tuple[str, ...]
    schedules: tuple[ScheduleView, ...]
    triggers: tuple[TriggerView, ...]
    recent: tuple[RunRecord, ...]  # newest first
    partitioned: bool

    @property
    def last_run(self) -> RunRecord | None:
        return self.recent[0] if self.recent else None

    @property
    def next_run(self) -> datetime | None:
        ticks = [s.next_tick for s in self.schedules if s.next_tick is not None]
        return min(ticks) if ticks else None

    @property
    def paused(self) -> bool:
        """True when the pipeline has schedules and every one of them is paused."""
        return bool(self.schedules) and all(s.paused for s in self.schedules)


@dataclass(frozen=True)
class ParamView:
    """A pipeline param and the JSON schema of its type (for forms and validation)."""

    name: str
    type: str
    required: bool
    default: Any
    schema: dict[str, Any]


@dataclass(frozen=True)
class NodeView:
    """A node of a pipeline's graph, as its snapshot recorded it."""

    id: str
    task: str
    upstream: tuple[str, ...]
    mapped: bool
    retries: int
    timeout: float | None
    pool: str | None
    description: str
    checks: tuple[tuple[str, str], ...] = ()  # the task's checks: (name, severity)


#: How many of a pipeline's newest partition keys its detail names (the launcher's choices).
NEWEST_KEYS = 500


@dataclass(frozen=True)
class PipelineDetail:
    """Everything the pipeline page shows."""

    overview: PipelineOverview
    file: str
    line: int
    params: tuple[ParamView, ...]
    nodes: tuple[NodeView, ...]
    partitions_spec: dict[str, Any] | None
    dimensions: tuple[str, ...]
    max_active_runs: int | None
    priority: int
    newest_keys: tuple[str, ...] = ()  # the newest NEWEST_KEYS partitions, oldest first


@dataclass(frozen=True)
class RunPage:
    """One page of the runs list; ``next_cursor`` fetches the next (older) page."""

    runs: tuple[RunRecord, ...]
    next_cursor: str | None


@dataclass(frozen=True)
class RunDetail:
    """A run with its graph (from the snapshot of its code version), tasks and attempts."""

    run: RunRecord
    nodes: tuple[NodeView, ...]
    tasks: tuple[TaskRunRecord, ...]
    attempts: tuple[AttemptRecord, ...]
    last_event_id: int
    # Each check of each task as a step of its own, with its outcome (check_steps.py).
    checks: tuple[CheckStep, ...] = ()

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.tasks:
            out[str(t.state)] = out.get(str(t.state), 0) + 1
        return out


@dataclass(frozen=True)
class Health:
    """Whether the store answers, which daemons are alive, and the version."""

    store_ok: bool
    store_error: str | None
    daemons: tuple[DaemonRecord, ...]  # alive ones
    version: str

    @property
    def scheduler_alive(self) -> bool:
        return bool(self.daemons)

    @property
    def ok(self) -> bool:
        return self.store_ok


class Catalog(Service):
    """Reads for the API and UI over a workspace (see the module docstring), for one actor."""

    def __init__(self, ws: Workspace, actor: Actor, auto: Automation | None = None) -> None:
        super().__init__(actor)
        self.ws = ws
        self.auto = auto or Automation(ws, actor)

    # -- pipelines ------------------------------------------------------------------------

    @action("pipelines.read")
    def pipelines(self) -> list[PipelineOverview]:
        """Every loaded pipeline, by name, with schedules, triggers and recent runs."""
        self.ws.refresh()  # `legato web` alone has no loop to notice edits for it
        pipes = self._sight().visible()
        recent = self.ws.store.browse.recent_runs([p.name for p in pipes], RECENT_RUNS)
        schedules = self.auto.schedules()
        triggers = self.auto.triggers()
        return [self._overview(p, schedules, triggers, recent.get(p.name, [])) for p in pipes]

    def _overview(
        self,
        pipe: Pipeline,
        schedules: Sequence[ScheduleView],
        triggers: Sequence[TriggerView],
        recent: Sequence[RunRecord],
    ) -> PipelineOverview:
        return PipelineOverview(
            name=pipe.name,
            description=pipe.description,
            tags=tuple(sorted(pipe.tags)),
            schedules=tuple(s for s in schedules if s.pipeline == pipe.name),
            triggers=tuple(t for t in triggers if t.pipeline == pipe.name),
            recent=tuple(recent),
            partitioned=pipe.automation.partitions is not None,
        )

    @action("pipelines.read")
    def pipeline(self, name: str) -> PipelineDetail:
        """One pipeline: graph, params, its newest partition keys, schedules, triggers (its
        partitions' states are ``door.partitions``'s, a page or a summary at a time: 10^5 of
        them for ten years of hours)."""
        pipe = self._sight().pipeline(name)
        recent = self.ws.store.browse.recent_runs([pipe.name], RECENT_RUNS)[pipe.name]
        overview = self._overview(pipe, self.auto.schedules(), self.auto.triggers(), recent)
        parts = pipe.automation.partitions
        return PipelineDetail(
            overview=overview,
            file=pipe.file,
            line=pipe.line,
            params=tuple(param_view(p) for p in pipe.params.values()),
            nodes=nodes_of(pipe.snapshot()),
            partitions_spec=None if parts is None else parts.describe(),
            dimensions=() if parts is None else tuple(parts.dimensions),
            max_active_runs=pipe.automation.max_active_runs,
            priority=pipe.automation.priority,
            newest_keys=(
                () if parts is None else tuple(parts.newest(self.ws.clock(), NEWEST_KEYS))
            ),
        )

    @action("pipelines.read")
    def load_errors(self) -> list[dict[str, str]]:
        """Modules of the project that failed to load, with why (to actors that see every
        pipeline: a module that failed to load belongs to no pipeline a scope could cover)."""
        self.ws.refresh()
        if not self._sight().whole:
            return []
        return [
            {"module": e.module, "message": e.message, "traceback": e.traceback}
            for e in self.ws.project.errors
        ]

    # -- runs -----------------------------------------------------------------------------

    @action("runs.read")
    def runs(
        self,
        *,
        pipeline: str | None = None,
        states: Sequence[str] = (),
        partition: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        cursor: str | None = None,
        limit: int = 50,
        backfill_id: str | None = None,
        environment: str | None = None,
    ) -> RunPage:
        """Runs newest first, filtered, one page at a time (``cursor`` from the last page);
        ``environment`` keeps the runs made in that environment."""
        if not 1 <= limit <= MAX_PAGE:
            raise ServiceError(f"limit must be between 1 and {MAX_PAGE}", "limit")
        try:
            wanted = [RunState(s) for s in states]
        except ValueError:
            known = ", ".join(s.value for s in RunState)
            raise ServiceError(
                f"unknown run state in {list(states)} (states: {known})", "state"
            ) from None
        found = self.ws.store.browse.list_runs(
            pipelines=self._sight().pipelines(),
            pipeline=pipeline,
            state=wanted or None,
            partition=partition,
            created_after=created_after,
            created_before=created_before,
            before_id=cursor,
            backfill_id=backfill_id,
            environment=environment,
            limit=limit + 1,
        )
        more = len(found) > limit
        page = tuple(found[:limit])
        return RunPage(page, page[-1].id if more and page else None)

    @action("runs.read")
    def backfill_runs(self, backfill_id: str) -> list[RunRecord]:
        """Every run a backfill has made so far, newest first."""
        return self.ws.store.browse.list_runs(
            backfill_id=backfill_id, limit=None, pipelines=self._sight().pipelines()
        )

    @action("runs.read")
    def get_run(self, run_id: str) -> RunRecord:
        """The run with exactly this id; NotFoundError otherwise."""
        from legato.domain.records import NotFound

        def missing() -> NotFoundError:
            return NotFoundError(f"no run with id {run_id!r}")

        try:
            run = self.ws.store.runs.get_run(run_id)
        except NotFound:
            raise missing() from None
        return self._sight().run(run, missing)

    @action("runs.read")
    def run(self, run_id: str, *, attempts: bool = True) -> RunDetail:
        """A run with its graph, task runs and finished attempts (none unless ``attempts``:
        a page that shows some tasks asks for theirs with ``attempts_of``)."""
        run = self.get_run(run_id)
        store = self.ws.store
        snapshot = self.ws.snapshot_of(run)
        # The newest event id first: a live view resuming from it misses nothing that
        # changed after the rows below were read.
        last_event = store.browse.run_last_event_id(run.id)
        nodes = nodes_of(snapshot)
        return RunDetail(
            run=run,
            nodes=nodes,
            tasks=tuple(self.ws.in_graph_order(snapshot, store.runs.get_task_runs(run.id))),
            attempts=tuple(store.runs.get_attempts(run.id)) if attempts else (),
            last_event_id=last_event,
            checks=check_steps(nodes, store.checks.list(run_id=run.id, limit=RUN_RESULTS)),
        )

    @action("runs.read")
    def attempts_of(self, run_id: str, task_keys: Collection[str]) -> tuple[AttemptRecord, ...]:
        """The finished attempts of these tasks of the run, by task key and number."""
        run = self.get_run(run_id)
        return tuple(self.ws.store.runs.get_attempts(run.id, task_keys=task_keys))

    @action("runs.read")
    def code_changes(self, run_id: str) -> CodeChanges:
        """The run's code version against that of its pipeline's previous run: the files
        added, removed and changed, with a unified diff where their texts are kept (but not
        the files of modules whose pipelines the actor does not see)."""
        from dataclasses import replace

        from legato.services.code_changes import code_changes

        found = code_changes(self.ws, self.get_run(run_id))
        hidden = self._sight().hidden_files()
        if not hidden:
            return found
        return replace(
            found,
            files=tuple(f for f in found.files if f not in hidden),
            changes=tuple(c for c in found.changes if c.path not in hidden),
        )

    @action("runs.read")
    def events(self, run_id: str, after_id: int = 0, limit: int = 1000) -> list[EventRecord]:
        """The run's events after ``after_id``, oldest first."""
        self.get_run(run_id)
        return self.ws.store.runs.get_events(run_id, after_id, limit)

    @action("logs.read")
    def log(self, run_id: str, task_key: str, attempt: int) -> LogEntry:
        """One attempt's log (the running attempt's too)."""
        self.get_run(run_id)
        for entry in Runs(self.ws, self.actor).logs(run_id, task_key):
            if entry.attempt == attempt:
                return entry
        raise NotFoundError(f"run {run_id} has no attempt {attempt} of task {task_key!r}")

    @action("tasks.mark", command=True)
    def mark_task(
        self, run_id: str, task_key: str, state: str, *, by: str = "operator"
    ) -> RunRecord:
        """Mark a task of a finished run succeeded or failed; the run's state follows.

        A task marked succeeded that has no stored result hands None to its downstream when
        the run is re-run from failure.
        """
        from legato.domain.records import NotFound

        try:
            new = TaskState(state)
        except ValueError:
            raise ServiceError(
                f"a task can be marked succeeded or failed, not {state!r}", "state"
            ) from None
        if new not in (TaskState.SUCCEEDED, TaskState.FAILED):
            raise ServiceError(f"a task can be marked succeeded or failed, not {state!r}", "state")
        run = self.get_run(run_id)
        rows = {r.task_key: r for r in self.ws.store.runs.get_task_runs(run.id)}
        row = rows.get(task_key)
        if row is None:
            raise NotFoundError(f"run {run.id} has no task {task_key!r}")
        if row.map_index is not None or any(
            r.node == row.node and r.map_index is not None for r in rows.values()
        ):
            raise Conflict(f"task {task_key!r} is mapped; re-run it instead of marking it")
        try:
            return self.ws.store.browse.mark_task(
                run.id, task_key, new, self.ws.clock(), f"marked {new} by {by}", judge_mark
            )
        except InvalidTransition as exc:
            raise Conflict(f"run {run.id}, task {task_key!r}: {exc}") from None
        except NotFound as exc:
            raise NotFoundError(str(exc)) from None

    # -- health ---------------------------------------------------------------------------

    @action("health.read")
    def health(self) -> Health:
        """Store reachable, live daemons (heartbeat within 15 s), version."""
        from legato.domain.records import StoreError

        try:
            self.ws.store.ping()
            cutoff = self.ws.clock() - HEARTBEAT_DEAD_AFTER
            alive = tuple(d for d in self.ws.store.daemons.daemons() if d.heartbeat_at >= cutoff)
            return Health(True, None, alive, __version__)
        except StoreError as exc:
            return Health(False, str(exc), (), __version__)


def param_view(p: Param) -> ParamView:
    """A param with the JSON schema of its type hint (``{}`` when it has none)."""
    from legato.definitions.pipeline import _jsonable

    schema: dict[str, Any] = {}
    if p.annotation is not inspect.Parameter.empty and not isinstance(p.annotation, str):
        from pydantic import TypeAdapter
        from pydantic.errors import PydanticUserError

        try:
            schema = TypeAdapter(p.annotation).json_schema()
        except (PydanticUserError, TypeError, ValueError):
            schema = {}
    return ParamView(p.name, p.type_name, p.required, _jsonable(p.default), schema)


def nodes_of(snapshot: dict[str, Any]) -> tuple[NodeView, ...]:
    """The graph's nodes as a snapshot describes them."""
    return tuple(
        NodeView(
            id=n["id"],
            task=n.get("task", n["id"]),
            upstream=tuple(n.get("upstream", ())),
            mapped=bool(n.get("mapped")),
            retries=int(n.get("retries") or 0),
            timeout=n.get("timeout"),
            pool=n.get("pool"),
            description=n.get("description") or "",
            checks=tuple((c["name"], c["severity"]) for c in n.get("checks", ())),
        )
        for n in snapshot.get("nodes", [])
    )


__all__ = [
    "Catalog",
    "Health",
    "NodeView",
    "ParamView",
    "PipelineDetail",
    "PipelineOverview",
    "RunDetail",
    "RunPage",
]
