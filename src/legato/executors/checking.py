"""A task's data-quality checks, evaluated in the worker on the output it has just stored.

The value is checked in memory (never read back from the result store), all checks on one
Arrow view of it (``legato.quality.evaluate_all``). A blocking check that fails, or cannot
be evaluated, fails the attempt: its output is written, but the task does not succeed, so
no downstream task reads it. A relationship check with another asset reads that asset's
stored data where the driver found it (``legato.engine.related``): only its key columns
when it is Parquet.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from legato.clock import Clock, system_clock
from legato.definitions.check_spec import Check
from legato.definitions.task import Task
from legato.domain.records import NewCheckResult, RunRecord
from legato.domain.refs import ResultRef
from legato.executors.interface import Related

if TYPE_CHECKING:
    from legato.quality import CheckOutcome

__all__ = ["Checked", "check_result", "masked_results", "run_checks"]

#: Reads the given columns of a stored result (``ResultStore.get_columns``).
Reader = Callable[[ResultRef, Sequence[str]], Any]
# Failing rows shown in a blocked attempt's error (all of the sample is stored with the result).
_SHOWN = 5


@dataclass(frozen=True)
class Checked:
    """The checks' results, and what blocks the output (None: nothing does)."""

    results: tuple[dict[str, Any], ...]
    blocked: str | None


def run_checks(
    task: Task,
    value: Any,
    resource: Callable[[str], Any],
    *,
    clock: Clock = system_clock,
    related: Sequence[Related] = (),
    read: Reader | None = None,
) -> Checked:
    """Evaluate ``task.checks`` on ``value``; ``resource(name)`` gives ``sql(resource=)``
    checks their engine (opened only when asked for). A relationship check reads the other
    asset where ``related`` (resolved by the driver) says it is stored, with ``read(ref,
    columns)`` (``ResultStore.get_columns``: only the key columns of a Parquet result)."""
    if not task.checks:
        return Checked((), None)
    # Imported here: a run without checks never pays for the quality layer (nor pyarrow).
    from legato.quality import CheckOutcome, evaluate_all

    asset = task.produces[0].key if task.produces else None
    now = clock()
    other = _OtherAssets(task, related, read)
    outcomes: list[CheckOutcome] = []
    # Checks sharing an engine (none, or one resource's) are evaluated together: one view.
    groups: dict[str | None, list[Check]] = {}
    for check in task.checks:
        groups.setdefault(check.args.get("resource"), []).append(check)
    for name, group in groups.items():
        try:
            engine = None if name is None else resource(name)
        except Exception as exc:
            outcomes.extend(
                CheckOutcome(c.name, c.severity, "error", asset=c.asset,
                             message=f"cannot open resource {name!r}: {type(exc).__name__}: {exc}")
                for c in group
            )
            continue
        outcomes.extend(evaluate_all(group, value, now=now, engine=engine, related=other))
    results = tuple({**o.to_json(), "asset": o.asset or asset} for o in outcomes)
    blocking = [o for o in outcomes if o.blocks]
    if not blocking:
        return Checked(results, None)
    return Checked(results, "; ".join(_told(o) for o in blocking))


class _OtherAssets:
    """The data of the assets relationship checks compare with, each read once, when the
    first check asks for it (only the key columns the task's checks name)."""

    def __init__(self, task: Task, related: Sequence[Related], read: Reader | None) -> None:
        self._where = {r.asset: r for r in related}
        self._read = read
        self._columns: dict[str, list[str]] = {}
        for check in task.checks:
            if check.kind == "relationship" and check.args.get("to"):
                wanted = self._columns.setdefault(str(check.args["to"]), [])
                wanted.append(str(check.args["to_column"]))
        self._data: dict[str, Any] = {}

    def __call__(self, key: str) -> Any:
        if key not in self._data:
            where = self._where.get(key)
            if where is None or self._read is None:
                raise LookupError(f"the data of asset {key!r} was not looked up for this run")
            if where.problem is not None or where.ref is None:
                raise LookupError(where.problem or f"asset {key!r} holds no data")
            self._data[key] = self._read(where.ref, sorted(set(self._columns.get(key, ()))))
        return self._data[key]


def _told(o: CheckOutcome) -> str:
    """A blocking check's finding in one line: its name, the count and some failing rows."""
    if o.outcome == "error":
        return f"check {o.name} could not be evaluated: {o.message}"
    counted = f" ({o.failed_count} of {o.total_count} rows)" if o.failed_count is not None else ""
    rows = ", ".join(str(dict(r)) for r in o.sample[:_SHOWN])
    more = " …" if len(o.sample) > _SHOWN else ""
    told = f"check {o.name} failed{counted}: {o.message}"
    return f"{told}; failing rows: {rows}{more}" if rows else told


def masked_results(
    results: tuple[dict[str, Any], ...], mask: Callable[[str], str]
) -> tuple[dict[str, Any], ...]:
    """``results`` with ``mask`` applied to their messages and the texts of their sample rows
    (a failing row may hold a secret the attempt was handed)."""

    def texts(value: Any) -> Any:
        if isinstance(value, str):
            return mask(value)
        if isinstance(value, dict):
            return {k: texts(v) for k, v in value.items()}
        if isinstance(value, list):
            return [texts(v) for v in value]
        return value

    return tuple(
        {**r, "message": mask(r["message"]), "sample": [texts(row) for row in r["sample"]]}
        for r in results
    )


def check_result(
    run: RunRecord, task_key: str, result: Mapping[str, Any], at: datetime
) -> NewCheckResult:
    """One of an outcome's ``checks`` as the store keeps it, for ``task_key`` of ``run``."""
    return NewCheckResult(
        check_name=result["name"],
        asset=result["asset"],
        run_id=run.id,
        pipeline=run.pipeline,
        task_key=task_key,
        partition=run.partition,
        severity=result["severity"],
        outcome=result["outcome"],
        failed_count=result["failed_count"],
        total_count=result["total_count"],
        sample=tuple(result["sample"]),
        message=result["message"],
        at=at,
    )
