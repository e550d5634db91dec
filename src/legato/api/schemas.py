"""The API's request and response bodies (pydantic), and their conversion from service views.

Pydantic lives here, at the edge; the services hand out frozen dataclasses.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Self
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from legato.services.automation_service import TriggerView
    from legato.services.backfill_views import BackfillKeysPage, BackfillView
    from legato.services.catalog import (
        Health,
        ParamView,
        PipelineDetail,
        PipelineOverview,
        RunDetail,
    )
    from legato.services.code_changes import CodeChanges


class Body(BaseModel):
    """Request bodies refuse fields they do not know, so a typo is an error, not a no-op."""

    model_config = ConfigDict(extra="forbid")


class Record(BaseModel):
    """A response read off a record or view of the same field names (``Model.of(record)``)."""

    model_config = ConfigDict(from_attributes=True)

    @classmethod
    def of(cls, obj: Any) -> Self:
        return cls.model_validate(obj)


# -- errors ---------------------------------------------------------------------------------


class ErrorOut(BaseModel):
    """Every 4xx answer: what went wrong and, when one input is at fault, which."""

    error: str
    field: str | None = None


# -- runs -----------------------------------------------------------------------------------


class RunOut(Record):
    id: str
    pipeline: str
    state: str
    params: dict[str, Any]
    partition: str | None
    code_version: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    parent_run_id: str | None
    rerun_kind: str | None
    cancel_requested: bool
    error: str | None
    run_key: str | None
    priority: int
    origin: str | None
    backfill_id: str | None
    environment: str | None = Field(
        None, description='the environment the run was made in ("default": no [env.NAME])'
    )


class RunBrief(Record):
    """A run in a strip of recent runs."""

    id: str
    state: str
    partition: str | None
    created_at: datetime


class RunPageOut(BaseModel):
    runs: list[RunOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next (older) page")


class TaskRunOut(Record):
    task_key: str
    node: str
    map_index: int | None
    state: str
    attempt: int
    started_at: datetime | None
    finished_at: datetime | None
    next_attempt_at: datetime | None
    error: str | None
    worker: str | None
    reused_from: str | None
    result_format: str | None
    result_note: str | None = Field(
        None, description="why the result is not in the usual format of its kind, if it is not"
    )
    item_count: int | None


class AttemptOut(Record):
    task_key: str
    number: int
    outcome: str
    started_at: datetime
    finished_at: datetime | None
    error: str | None
    traceback: str | None
    worker: str | None


class NodeOut(Record):
    id: str
    task: str
    upstream: list[str]
    mapped: bool
    retries: int
    timeout: float | None
    pool: str | None
    description: str


class RunNodeOut(NodeOut):
    """A node of a run's graph: a task, or one of its checks as a step after it."""

    kind: Literal["task", "check"] = "task"
    state: str | None = Field(
        None,
        description="a task's state (null for a mapped node: see its elements' task runs, or "
        "before it was queued); a check's: passed, failed (blocking), warned, error or not_run",
    )
    check: str | None = Field(None, description="a check's name")
    severity: str | None = Field(None, description="a check's: warn or block")
    failed_count: int | None = None
    total_count: int | None = None
    message: str | None = Field(None, description="what a check found")

    @classmethod
    def steps(cls, d: RunDetail) -> list[RunNodeOut]:
        """The run's tasks in the graph's order, each followed by its checks."""
        own = {t.task_key: str(t.state) for t in d.tasks if t.map_index is None}
        checks: dict[str, list[RunNodeOut]] = {}
        for c in d.checks:
            checks.setdefault(c.node, []).append(cls(
                id=c.id, task=c.node, upstream=[c.node], mapped=False, retries=0,
                timeout=None, pool=None, description="", kind="check", state=c.state,
                check=c.name, severity=c.severity,
                failed_count=c.failed_count, total_count=c.total_count, message=c.message,
            ))
        out: list[RunNodeOut] = []
        for n in d.nodes:
            task = NodeOut.of(n).model_dump()
            out.append(cls(**task, state=None if n.mapped else own.get(n.id)))
            out += checks.get(n.id, [])
        return out


class FileChangeOut(Record):
    path: str
    change: Literal["added", "removed", "changed"]
    diff: str | None = Field(description="a unified diff, when the texts of both are kept")


class CodeChangesOut(BaseModel):
    """A run's code version against that of the pipeline's previous run."""

    run_id: str
    code_version: str
    previous_run_id: str | None
    previous_code_version: str | None
    known: bool = Field(description="false when a version's file list was not kept")
    files: list[str] = Field(description="the files of the run's code version")
    changes: list[FileChangeOut]

    @classmethod
    def of(cls, c: CodeChanges) -> CodeChangesOut:
        prev = c.previous
        return cls(
            run_id=c.run.id,
            code_version=c.run.code_version,
            previous_run_id=prev.id if prev else None,
            previous_code_version=prev.code_version if prev else None,
            known=c.known,
            files=list(c.files),
            changes=[FileChangeOut.of(f) for f in c.changes],
        )


class RunDetailOut(BaseModel):
    run: RunOut
    nodes: list[RunNodeOut] = Field(
        description="the tasks, each followed by its checks (kind \"check\") as steps"
    )
    tasks: list[TaskRunOut]
    attempts: list[AttemptOut] = Field(
        description="finished attempts, then each running attempt (finished_at null)"
    )
    counts: dict[str, int]
    last_event_id: int
    pruned: list[str] = Field(
        default_factory=list,
        description='what retention removed of the run: "logs", "results" ([retention])',
    )

    @classmethod
    def of(cls, d: RunDetail) -> RunDetailOut:
        attempts = [AttemptOut.of(a) for a in d.attempts]
        for t in d.tasks:
            if str(t.state) == "running" and t.attempt and t.started_at is not None:
                attempts.append(
                    AttemptOut(
                        task_key=t.task_key,
                        number=t.attempt,
                        outcome="running",
                        started_at=t.started_at,
                        finished_at=None,
                        error=None,
                        traceback=None,
                        worker=t.worker,
                    )
                )
        return cls(
            run=RunOut.of(d.run),
            nodes=RunNodeOut.steps(d),
            tasks=[TaskRunOut.of(t) for t in d.tasks],
            attempts=attempts,
            counts=d.counts,
            last_event_id=d.last_event_id,
        )


class EventOut(Record):
    id: int
    task_key: str | None
    kind: str
    old_state: str | None
    new_state: str | None
    at: datetime
    message: str | None


class LaunchIn(Body):
    params: dict[str, Any] = Field(default_factory=dict)
    # Kept as given for a pipeline without partitions, in an index: a key of reasonable size.
    partition: str | None = Field(default=None, max_length=500)
    priority: int | None = Field(default=None, ge=-1_000_000, le=1_000_000)


class RerunIn(Body):
    task: str | None = Field(
        default=None,
        description="re-run this task and its downstream; without it, re-run from failure",
    )


class MarkIn(Body):
    state: Literal["succeeded", "failed"]


class MoveIn(Body):
    to: Literal["top", "bottom"]


# -- pipelines ------------------------------------------------------------------------------


class ScheduleOut(Record):
    name: str
    expression: str
    tz: str
    catchup: str
    paused: bool
    last_tick: datetime | None
    next_tick: datetime | None


class TriggerOut(BaseModel):
    name: str
    kind: str
    paused: bool
    detail: dict[str, Any]

    @classmethod
    def of(cls, t: TriggerView) -> TriggerOut:
        detail = {k: v for k, v in t.detail.items() if k not in ("name", "kind")}
        return cls(name=t.name, kind=t.kind, paused=t.paused, detail=detail)


class PipelineOut(BaseModel):
    name: str
    description: str
    tags: list[str]
    paused: bool
    next_run: datetime | None
    last_run: RunBrief | None
    recent_runs: list[RunBrief]
    schedules: list[ScheduleOut]
    triggers: list[TriggerOut]
    partitioned: bool

    @classmethod
    def of(cls, p: PipelineOverview) -> PipelineOut:
        return cls(
            name=p.name,
            description=p.description,
            tags=list(p.tags),
            paused=p.paused,
            next_run=p.next_run,
            last_run=None if p.last_run is None else RunBrief.of(p.last_run),
            recent_runs=[RunBrief.of(r) for r in p.recent],
            schedules=[ScheduleOut.of(s) for s in p.schedules],
            triggers=[TriggerOut.of(t) for t in p.triggers],
            partitioned=p.partitioned,
        )


class ParamOut(BaseModel):
    name: str
    type: str
    required: bool
    default: Any
    json_schema: dict[str, Any]

    @classmethod
    def of(cls, p: ParamView) -> ParamOut:
        return cls(
            name=p.name, type=p.type, required=p.required, default=p.default, json_schema=p.schema
        )


class PartitionOut(Record):
    key: str
    state: str = Field(description='"never run" or the state of the newest run')
    run_id: str | None


class PartitionPageOut(BaseModel):
    partitions: list[PartitionOut]
    total: int = Field(description="partitions matching the filters, on every page")
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page")


class KeyRangeOut(BaseModel):
    first: str
    last: str
    count: int


class BucketOut(BaseModel):
    label: str = Field(description="the year, month, day or hour the windows start in")
    first: str
    last: str
    counts: dict[str, int]


class PartitionSummaryOut(BaseModel):
    pipeline: str
    total: int
    counts: dict[str, int] = Field(description="partitions by state; never run included")
    failed: list[KeyRangeOut] = Field(
        description="the newest ranges of partitions whose newest run failed (`ranges`)"
    )
    missing: list[KeyRangeOut] = Field(description="the newest ranges of partitions never run")
    granularity: str | None
    buckets: list[BucketOut]
    failed_ranges: int = Field(description="how many ranges of failed partitions in all")
    missing_ranges: int = Field(description="how many ranges of never-run partitions in all")


class PipelineDetailOut(PipelineOut):
    file: str
    line: int
    params: list[ParamOut]
    nodes: list[NodeOut]
    partitions_spec: dict[str, Any] | None
    partitions_url: str | None = Field(
        description="its partitions with their states, a page at a time (partitioned only)"
    )
    partitions_summary_url: str | None = Field(
        description="its partitions counted by state, with the failed and missing ranges"
    )
    max_active_runs: int | None
    priority: int

    @classmethod
    def of_detail(cls, d: PipelineDetail) -> PipelineDetailOut:
        base = PipelineOut.of(d.overview).model_dump()
        # A whole listing of 10^5 partitions was 7 MB here: they are paged at these instead.
        listed = f"/api/v1/pipelines/{quote(d.overview.name, safe='')}"
        return cls(
            **base,
            file=d.file,
            line=d.line,
            params=[ParamOut.of(p) for p in d.params],
            nodes=[NodeOut.of(n) for n in d.nodes],
            partitions_spec=d.partitions_spec,
            partitions_url=None if d.partitions_spec is None else f"{listed}/partitions",
            partitions_summary_url=(
                None if d.partitions_spec is None else f"{listed}/partitions/summary"
            ),
            max_active_runs=d.max_active_runs,
            priority=d.priority,
        )


class PausedOut(BaseModel):
    pipeline: str
    name: str | None
    paused: bool


# -- backfills, queue, health ---------------------------------------------------------------


class BackfillIn(Body):
    pipeline: str
    partitions: list[str] = Field(default_factory=list, description="these partition keys")
    start: str | None = Field(default=None, description="or a range: first partition key")
    end: str | None = Field(default=None, description="last partition key (inclusive)")
    all: bool = Field(default=False, description="also partitions that succeeded or run")
    max_concurrent: int = Field(default=2, ge=1, le=1000)
    params: dict[str, Any] = Field(default_factory=dict)


class BackfillRangeOut(BaseModel):
    first: str
    last: str
    count: int


class BackfillOut(BaseModel):
    id: str
    pipeline: str
    state: str
    ranges: list[BackfillRangeOut] = Field(
        description="its partitions as ranges of consecutive keys (the first 100)"
    )
    keys: list[str] = Field(description="partitions named one by one (the first 100)")
    left_off: int = Field(description="ranges and named keys not listed here")
    total: int
    done: int
    launched: int
    not_started: int
    runs: dict[str, int]
    max_concurrent: int
    priority: int
    params: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    message: str | None

    @classmethod
    def of(cls, b: BackfillView) -> BackfillOut:
        r = b.record
        return cls(
            id=r.id,
            pipeline=r.pipeline,
            state=str(r.state),
            ranges=[BackfillRangeOut(first=x.first, last=x.last, count=x.count) for x in b.ranges],
            keys=list(b.keys),
            left_off=b.left_off,
            total=b.total,
            done=b.done,
            launched=r.next_index,
            not_started=b.not_started,
            runs=b.runs,
            max_concurrent=r.max_concurrent,
            priority=r.priority,
            params=r.params,
            created_at=r.created_at,
            updated_at=r.updated_at,
            message=r.message,
        )


class BackfillKeyOut(BaseModel):
    key: str
    state: str = Field(description="its run's state, or 'not started'")
    run_id: str | None


class BackfillKeysOut(BaseModel):
    keys: list[BackfillKeyOut]
    total: int
    next_offset: int | None = Field(description="pass as ?offset= for the next page")

    @classmethod
    def of(cls, page: BackfillKeysPage) -> BackfillKeysOut:
        return cls(
            keys=[BackfillKeyOut(key=k.key, state=k.state, run_id=k.run_id) for k in page.keys],
            total=page.total,
            next_offset=page.next_offset,
        )


class DaemonOut(Record):
    id: str
    kind: str
    host: str
    pid: int
    version: str
    url: str | None
    started_at: datetime
    heartbeat_at: datetime


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    store: Literal["ok", "unreachable"]
    store_error: str | None
    scheduler_alive: bool
    daemons: list[DaemonOut]
    version: str

    @classmethod
    def of(cls, h: Health) -> HealthOut:
        return cls(
            status="ok" if h.ok else "degraded",
            store="ok" if h.store_ok else "unreachable",
            store_error=h.store_error,
            scheduler_alive=h.scheduler_alive,
            daemons=[DaemonOut.of(d) for d in h.daemons],
            version=h.version,
        )


class HookOut(BaseModel):
    run_id: str
    created: bool
    state: str
