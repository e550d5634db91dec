"""How every run is made, whatever made it (a command, the API, a schedule, a trigger, a
backfill, a re-run): its params checked and sized, its pipeline's snapshot saved, its
secret params sealed for it, then the run stored with its first task rows and the events
saying why it is as it is (``record_run``, through ``create_run``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from legato.definitions.errors import ParamError
from legato.definitions.pipeline import Pipeline
from legato.domain.states import RunState
from legato.engine import plan
from legato.services.secrets_service import drop_sealed, seal_params
from legato.services.service_errors import ServiceError

if TYPE_CHECKING:
    from legato.domain.records import NewTriggerEvent, RunRecord, TaskRunRecord
    from legato.services.workspace import Workspace


#: How a run's first task rows are made from its pipeline and the run (its id, partition,
#: params), with notes saying why (see ``create_run``): a run of part of a pipeline.
RowsOf = Callable[["Pipeline", "RunRecord"], tuple[Sequence["TaskRunRecord"], Sequence[str]]]


def check_params_size(ws: Workspace, params: Mapping[str, Any]) -> None:
    """Raise ServiceError (field ``params``) for params larger as JSON than legato.toml's
    ``[limits] params_bytes``: every list of runs carries them, however they came."""
    import json

    limit = ws.config.params_bytes
    try:
        size = len(json.dumps(params, ensure_ascii=False, default=str).encode("utf-8", "replace"))
    except (TypeError, ValueError, RecursionError):
        return  # the store says what is wrong with them
    if size > limit:
        raise ServiceError(
            f"params: {size} bytes as JSON, more than the {limit} a run may have "
            "([limits] params_bytes in legato.toml)",
            "params",
        )


def record_run(
    ws: Workspace,
    pipeline_name: str,
    params: Mapping[str, Any] | None = None,
    *,
    partition: str | None = None,
    from_text: bool = False,
    run_key: str | None = None,
    origin: str = "manual",
    priority: int | None = None,
    backfill_id: str | None = None,
    trigger_events: Sequence[NewTriggerEvent] = (),
    rows_of: RowsOf | None = None,
) -> tuple[RunRecord, Sequence[TaskRunRecord]]:
    """Record a new queued run (nothing runs yet); returns it with the task runs stored (a
    driver in this process starts from them instead of reading them back: 10,000 rows of
    a big fan take about 0.17 s).

    ``run_key`` makes creation idempotent: a second run with the same key raises
    DuplicateRun (from ``legato.domain.records``) carrying the first. ``priority`` defaults
    to the pipeline's. ``rows_of`` makes the run's task rows (default: every task pending).
    """
    from dataclasses import replace

    from legato.domain.ids import new_run_id
    from legato.domain.records import RunRecord

    ws.refresh()  # a run made right after an edit runs the edited code
    pipe = ws.pipeline(pipeline_name)
    try:
        values = pipe.params_to_json(pipe.validate_params(params or {}, from_text=from_text))
    except ParamError as exc:
        raise ServiceError(str(exc), exc.field) from None
    check_params_size(ws, values)
    now = ws.clock()
    partition = ws.check_partition(pipe, partition, now)
    ws.save_snapshot(pipe)
    if not ws.location_saved:
        ws.save_location()
    run_id = new_run_id(now)
    # A backfill's runs take its secret params' values, sealed again for each run.
    sealed = seal_params(
        ws,
        pipe,
        values,
        f"run/{run_id}",
        by=f"run:{run_id}",
        copy_from=f"backfill/{backfill_id}" if backfill_id else None,
    )
    run = RunRecord(
        id=run_id,
        pipeline=pipe.name,
        state=RunState.QUEUED,
        params=values,
        partition=partition,
        code_version=pipe.code_version,
        created_at=now,
        run_key=run_key,
        priority=pipe.automation.priority if priority is None else priority,
        queue_position=ws.next_position(now),
        origin=origin,
        backfill_id=backfill_id,
    )
    events = [replace(e, run_id=run.id) for e in trigger_events]
    rows: Sequence[TaskRunRecord] = plan.initial_task_runs(pipe, run.id)
    notes: Sequence[str] = ()
    if rows_of is not None:
        try:
            rows, notes = rows_of(pipe, run)
        except BaseException:
            drop_sealed(ws, sealed)
            raise
    try:
        return create_run(ws, run, rows, events, notes), rows
    except TypeError as exc:  # params that JSON cannot hold
        drop_sealed(ws, sealed)
        raise ServiceError(f"pipeline {pipe.name!r}: params cannot be stored: {exc}") from None
    except BaseException:  # the run exists already (its key), or the store failed
        drop_sealed(ws, sealed)
        raise


def create_run(
    ws: Workspace,
    run: RunRecord,
    rows: Sequence[TaskRunRecord],
    trigger_events: Sequence[NewTriggerEvent] = (),
    notes: Sequence[str] = (),
) -> RunRecord:
    """Store a new run with its task runs, made in the workspace's environment: every run,
    however it came (a command, the API, a schedule, a trigger, a backfill, a re-run),
    is created here. ``notes`` say why the run is as it is: its first "origin" events."""
    from dataclasses import replace

    from legato.domain.records import NewEvent

    run = replace(run, environment=ws.config.environment)
    said = [NewEvent(run.id, None, "origin", None, None, run.created_at, n) for n in notes]
    events = [*said, *plan.creation_events(rows, run.created_at)]
    return ws.store.runs.create_run(run, rows, events, trigger_events)

__all__ = ["RowsOf", "check_params_size", "create_run", "record_run"]
