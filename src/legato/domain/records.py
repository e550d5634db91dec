"""Immutable records the store reads and writes. The engine and services work with these."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from legato.domain.backfill_keys import BackfillKeys
from legato.domain.materializations import NewMaterialization
from legato.domain.states import BackfillState, RunState, TaskState


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One execution of a pipeline."""

    id: str
    pipeline: str
    state: RunState
    params: dict[str, Any]
    partition: str | None
    code_version: str
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    parent_run_id: str | None = None  # the run this one re-runs
    rerun_kind: str | None = None  # "from_failure" | "task" | None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    cancel_requested: bool = False
    error: str | None = None
    run_key: str | None = None  # unique when set: makes run creation idempotent
    priority: int = 0  # higher runs first, in the queue and for free workers
    queue_position: int = 0  # within a priority, lower runs first
    origin: str | None = None  # "manual" | "schedule:<name>" | "trigger:<name>" | "backfill:<id>"
    backfill_id: str | None = None
    environment: str | None = None  # [env.NAME] it was made in; None: before environments


@dataclass(frozen=True, slots=True)
class TaskRunRecord:
    """One task (or one element of a mapped task) inside a run, as of its latest state."""

    run_id: str
    task_key: str  # "clean_orders", or "fetch[3]" for element 3 of a mapped node
    node: str  # the node id in the pipeline graph
    map_index: int | None
    state: TaskState
    attempt: int = 0  # number of the current or last attempt; 0 before the first
    started_at: datetime | None = None  # start of the current or last attempt
    finished_at: datetime | None = None
    next_attempt_at: datetime | None = None  # set while up_for_retry
    result_uri: str | None = None
    result_format: str | None = None
    item_count: int | None = None  # length of a list result that is mapped over
    reused_from: str | None = None  # run id whose stored result this task run reuses
    error: str | None = None  # one line: "ValueError: bad row 12"
    worker: str | None = None  # where the current attempt runs
    # Why the result is not in its kind's usual format, e.g. "Parquet would change it: ...".
    result_note: str | None = None


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """A finished attempt of a task run (the running one lives on its TaskRunRecord)."""

    run_id: str
    task_key: str
    number: int
    # "succeeded" | "failed" | "skipped" | "canceled" | "timeout" | "crashed" | "interrupted"
    outcome: str
    started_at: datetime
    finished_at: datetime
    error: str | None = None
    traceback: str | None = None
    log_path: str | None = None
    worker: str | None = None


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One entry of the append-only event log."""

    id: int
    run_id: str
    task_key: str | None
    kind: str  # "run_state" | "task_state" | "attempt" | "lease" | "cancel_requested" | ...
    old_state: str | None
    new_state: str | None
    at: datetime
    message: str | None = None


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append; the store assigns its id."""

    run_id: str
    task_key: str | None
    kind: str
    old_state: str | None
    new_state: str | None
    at: datetime
    message: str | None = None


@dataclass(frozen=True, slots=True)
class NewLineageEvent:
    """An OpenLineage run event to send (``body``: its JSON), added to the outbox with the
    state change it tells of."""

    run_id: str
    event_type: str  # START | COMPLETE | FAIL | ABORT
    body: dict[str, Any]
    at: datetime


@dataclass(frozen=True, slots=True)
class NewCheckResult:
    """A data-quality check's result on one attempt's output, written with the attempt's end.

    ``sample`` holds up to ten failing rows, JSON-able.
    """

    check_name: str
    asset: str | None
    run_id: str
    pipeline: str
    task_key: str
    partition: str | None
    severity: str  # warn | block
    outcome: str  # passed | failed | error
    failed_count: int | None
    total_count: int | None
    sample: tuple[dict[str, Any], ...]
    message: str
    at: datetime


@dataclass(frozen=True, slots=True)
class CheckResultRecord:
    """A stored check result (``NewCheckResult`` with its id)."""

    id: int
    result: NewCheckResult


@dataclass(slots=True)
class Changes:
    """Everything one step of a run's driver changes, written in a single transaction.

    The store checks that ``owner`` still holds the run's lease inside that transaction
    (and extends it to ``lease_expires_at``; on PostgreSQL to the server's clock plus
    ``lease_seconds``); if not, nothing is written and LeaseLost is raised, so a driver
    that lost its lease can never overwrite another one's work.
    """

    run_id: str
    owner: str
    lease_expires_at: datetime
    lease_seconds: float = 15.0
    run: RunRecord | None = None  # full new row of the run, when it changed
    new_task_runs: list[TaskRunRecord] = field(default_factory=list)
    task_runs: list[TaskRunRecord] = field(default_factory=list)  # full new rows
    attempts: list[AttemptRecord] = field(default_factory=list)
    events: list[NewEvent] = field(default_factory=list)
    lineage: list[NewLineageEvent] = field(default_factory=list)  # told by ``events``
    # Assets the step's succeeded tasks produced (legato.domain.materializations).
    materializations: list[NewMaterialization] = field(default_factory=list)
    checks: list[NewCheckResult] = field(default_factory=list)  # of the attempts ended
    # The elements of mapped nodes made in this step, written in bulk (see NewElements).
    elements: list[NewElements] = field(default_factory=list)

    def empty(self) -> bool:
        return not (
            self.run or self.new_task_runs or self.task_runs or self.attempts or self.events
            or self.materializations or self.elements
        )


@dataclass(frozen=True, slots=True)
class NewElements:
    """Elements ``0 .. count - 1`` of the mapped node ``node``: a task run each, queued (key
    ``node[i]``), with its "queued" event at ``at``. The store makes the rows itself, in
    the step's transaction, rather than being handed a hundred thousand of them; their
    events come right after the first ``events_before`` events of the step."""

    node: str
    count: int
    at: datetime
    events_before: int


class StoreError(Exception):
    """Base class of the store's errors."""


class NotFound(StoreError):
    """No such run (or the id prefix matches none), user or other named row."""


class AlreadyExists(StoreError):
    """A row with that name exists already (a user, an unrevoked API token's name)."""


class Ambiguous(StoreError):
    """An id prefix matches more than one run."""


class LeaseLost(StoreError):
    """The driver no longer holds the run's lease."""


class StoreReplaced(StoreError):
    """The SQLite file this process opened was removed or replaced by another file since.

    Whatever it writes now goes to a file nobody else sees: it must stop, not go on.
    """


class StoreFull(StoreError):
    """The disk (or volume) under the store is full: writing fails until space is freed."""


class DuplicateRun(StoreError):
    """A run with the same run_key exists already."""

    def __init__(self, existing: RunRecord) -> None:
        super().__init__(f"run with key {existing.run_key!r} exists: {existing.id}")
        self.existing = existing


@dataclass(frozen=True, slots=True)
class CodeLocationRecord:
    """What the last load of a project found."""

    name: str
    root: str
    loaded_at: datetime
    pipelines: dict[str, str]  # pipeline name -> code version
    errors: list[dict[str, str]]  # {"module", "message", "traceback"}


@dataclass(frozen=True, slots=True)
class ScheduleState:
    """What the store knows of one schedule of a pipeline."""

    pipeline: str
    name: str
    cursor: datetime | None  # the last tick handled
    paused: bool
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class TriggerState:
    """What the store knows of one trigger of a pipeline."""

    pipeline: str
    name: str
    kind: str
    cursor: Any  # decoded JSON
    paused: bool
    token: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class TriggerEventRecord:
    """An event a trigger saw, and what became of it."""

    id: int
    pipeline: str
    trigger: str
    event_key: str
    received_at: datetime
    status: str  # "run_created" | "failed"
    run_id: str | None
    message: str | None


@dataclass(frozen=True, slots=True)
class BackfillRecord:
    """A backfill: runs for its partitions (ranges and named keys), created a few at a time."""

    id: str
    pipeline: str
    state: BackfillState
    keys: BackfillKeys
    next_index: int  # the first next_index of its keys have been given runs
    max_concurrent: int
    priority: int
    params: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    message: str | None = None


@dataclass(frozen=True, slots=True)
class DaemonRecord:
    """A daemon process and its last heartbeat."""

    id: str
    kind: str  # "up" | "scheduler"
    host: str
    pid: int
    version: str
    url: str | None
    started_at: datetime
    heartbeat_at: datetime


@dataclass(frozen=True, slots=True)
class NewTriggerEvent:
    """A trigger event to record (with the run it created, if any)."""

    pipeline: str
    trigger: str
    event_key: str
    received_at: datetime
    status: str  # "run_created" | "failed"
    run_id: str | None = None
    message: str | None = None

    def values(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline,
            "trigger": self.trigger,
            "event_key": self.event_key,
            "received_at": self.received_at,
            "status": self.status,
            "run_id": self.run_id,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class Progress:
    """What a driver reports after each step it wrote: the run, the task runs that changed,
    and (on demand: it walks every task) how many task runs are in each state."""

    run: RunRecord
    changed: list[TaskRunRecord]
    counts: Callable[[], Mapping[TaskState, int]]
