"""Conversion between records and table rows, and the JSON encoding of params and snapshots.

Reading is positional: each table's columns are declared in the field order of its record
(checked by a test), so a row maps onto a record without a per-column dictionary.
Writing builds plain dicts, which is what executemany wants.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ParamSpec, TypeVar

from sqlalchemy.exc import DBAPIError, StatementError

from legato.domain.records import AttemptRecord, EventRecord, NewEvent, RunRecord, TaskRunRecord
from legato.domain.states import RunState, TaskState


def _reject(value: Any) -> Any:
    # json's default hook: called for anything json cannot encode by itself.
    raise TypeError(
        f"cannot store {type(value).__name__} value {value!r:.80} as JSON: run params and "
        "snapshots may hold only str, int, float, bool, None, lists and dicts with str keys"
    )


def to_json(value: Any) -> str:
    """Encode ``value`` as compact JSON; TypeError with a clear message for non-JSON values."""
    return json.dumps(value, default=_reject, separators=(",", ":"), ensure_ascii=False)


def from_json(text: str) -> Any:
    """Decode JSON text written by :func:`to_json`."""
    return json.loads(text)


# -- reading ---------------------------------------------------------------------------------


def run_from_row(row: Sequence[Any]) -> RunRecord:
    """A RunRecord from a full ``runs`` row."""
    return RunRecord(row[0], row[1], RunState(row[2]), from_json(row[3]), *row[4:])


def task_run_from_row(row: Sequence[Any]) -> TaskRunRecord:
    """A TaskRunRecord from a full ``task_runs`` row."""
    return TaskRunRecord(row[0], row[1], row[2], row[3], TaskState(row[4]), *row[5:])


def attempt_from_row(row: Sequence[Any]) -> AttemptRecord:
    """An AttemptRecord from a full ``attempts`` row."""
    return AttemptRecord(*row)


def event_from_row(row: Sequence[Any]) -> EventRecord:
    """An EventRecord from a full ``events`` row."""
    return EventRecord(*row)


# -- writing ---------------------------------------------------------------------------------
# States are written as ``.value``: a StrEnum is a str, but drivers may adapt Enum members by
# name, and plain strings keep both backends identical.


def run_values(run: RunRecord) -> dict[str, Any]:
    """All columns of ``runs`` for an INSERT."""
    return {
        "id": run.id,
        "pipeline": run.pipeline,
        "state": RunState(run.state).value,
        "params": to_json(run.params),
        "partition": run.partition,
        "code_version": run.code_version,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "parent_run_id": run.parent_run_id,
        "rerun_kind": run.rerun_kind,
        "lease_owner": run.lease_owner,
        "lease_expires_at": run.lease_expires_at,
        "cancel_requested": run.cancel_requested,
        "error": run.error,
        "run_key": run.run_key,
        "priority": run.priority,
        "queue_position": run.queue_position,
        "origin": run.origin,
        "backfill_id": run.backfill_id,
        "environment": run.environment,
    }


def run_progress_values(run: RunRecord) -> dict[str, Any]:
    """The columns of ``runs`` that a driver may change while it holds the lease."""
    return {
        "state": RunState(run.state).value,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "error": run.error,
        "cancel_requested": run.cancel_requested,
        "code_version": run.code_version,  # the code the driver runs it on (see driver.begin)
    }


def task_run_values(tr: TaskRunRecord) -> dict[str, Any]:
    """All columns of ``task_runs`` for an INSERT."""
    values = task_run_update_values(tr)
    values["run_id"] = values.pop("k_run_id")
    values["task_key"] = values.pop("k_task_key")
    return values


def task_run_update_values(tr: TaskRunRecord) -> dict[str, Any]:
    """Parameters of the keyed full-row UPDATE of ``task_runs`` (keys as ``k_*``)."""
    return {
        "k_run_id": tr.run_id,
        "k_task_key": tr.task_key,
        "node": tr.node,
        "map_index": tr.map_index,
        "state": tr.state.value if isinstance(tr.state, TaskState) else TaskState(tr.state).value,
        "attempt": tr.attempt,
        "started_at": tr.started_at,
        "finished_at": tr.finished_at,
        "next_attempt_at": tr.next_attempt_at,
        "result_uri": tr.result_uri,
        "result_format": tr.result_format,
        "item_count": tr.item_count,
        "reused_from": tr.reused_from,
        "error": tr.error,
        "worker": tr.worker,
        "result_note": tr.result_note,
    }


def attempt_values(a: AttemptRecord) -> dict[str, Any]:
    """All columns of ``attempts`` for an INSERT."""
    return {
        "run_id": a.run_id,
        "task_key": a.task_key,
        "number": a.number,
        "outcome": a.outcome,
        "started_at": a.started_at,
        "finished_at": a.finished_at,
        "error": a.error,
        "traceback": a.traceback,
        "log_path": a.log_path,
        "worker": a.worker,
    }


def event_values(e: NewEvent) -> dict[str, Any]:
    """Columns of ``events`` for an INSERT (the database assigns ``id``)."""
    return {
        "run_id": e.run_id,
        "task_key": e.task_key,
        "kind": e.kind,
        "old_state": None if e.old_state is None else str(e.old_state),
        "new_state": None if e.new_state is None else str(e.new_state),
        "at": e.at,
        "message": e.message,
    }


def record_values(table: Any, record: Any) -> dict[str, Any]:
    """A record's fields by its table's columns, for an INSERT (the names are the same)."""
    return {c.name: getattr(record, c.name) for c in table.c}


def check_run_ids(run_id: str, items: Iterable[Any], what: str) -> None:
    """Raise ValueError unless every item's ``run_id`` is ``run_id``."""
    # Everything in one batch must belong to the run whose lease (or creation) guards it.
    for item in items:
        if item.run_id != run_id:
            raise ValueError(f"{what} of run {item.run_id} given in a write for run {run_id}")


_P = ParamSpec("_P")
_T = TypeVar("_T")


def unwrap_bind_errors(method: Callable[_P, _T]) -> Callable[_P, _T]:
    """Re-raise a bad value (e.g. a naive datetime) as the TypeError/ValueError it is.

    SQLAlchemy wraps errors raised while binding parameters in StatementError; callers should
    not need to know that, and ``apply`` (which binds without SQLAlchemy) raises them plainly.
    """

    @functools.wraps(method)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return method(*args, **kwargs)
        except StatementError as exc:
            if not isinstance(exc, DBAPIError) and isinstance(exc.orig, TypeError | ValueError):
                raise exc.orig from exc
            raise

    return wrapper
