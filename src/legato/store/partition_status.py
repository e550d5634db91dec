"""Each partition's state, kept: the newest run (greatest id) of each (pipeline, partition)
and that run's state, written in the transaction that creates a run or changes its state.

Reading a page of partitions or their counts by state then costs what the partitions cost,
whatever the number of runs behind them (a pipeline run hourly for ten years, re-run a few
times, has 10^6 runs over 10^5 partitions).
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CompoundSelect,
    Connection,
    Select,
    TextClause,
    bindparam,
    func,
    select,
    text,
    union_all,
    update,
)

from legato.domain.records import RunRecord
from legato.domain.states import RunState
from legato.store import db
from legato.store.schema import partition_status

_p = partition_status.c

#: The state of a run written where it is its partition's newest (an older run's change
#: leaves the partition alone). Prepared for the driver's step (``statements.PreparedSet``).
UPDATE_STATUS = (
    update(partition_status)
    .where(
        _p.pipeline == bindparam("k_pipeline"),
        _p.partition == bindparam("k_partition"),
        _p.run_id == bindparam("k_run_id"),
    )
    .values(state=bindparam("state"), updated_at=bindparam("updated_at", type_=_p.updated_at.type))
)


def status_update_values(run: RunRecord, now: datetime) -> dict[str, Any]:
    """Bind parameters of :data:`UPDATE_STATUS` for ``run`` (which has a partition)."""
    return {
        "k_pipeline": run.pipeline,
        "k_partition": run.partition,
        "k_run_id": run.id,
        "state": RunState(run.state).value,
        "updated_at": now,
    }


def write_new_run(conn: Connection, run: RunRecord) -> None:
    """Make ``run`` its partition's newest unless a run with a greater id already is (two
    creators racing on PostgreSQL end with the greater id either way)."""
    if run.partition is None:
        return
    backend: db.Backend = "postgresql" if conn.dialect.name == "postgresql" else "sqlite"
    # Imported here: the PostgreSQL dialect costs ~35 ms to import, wasted on SQLite.
    if backend == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
    stmt = insert(partition_status).values(
        pipeline=run.pipeline,
        partition=run.partition,
        run_id=run.id,
        state=RunState(run.state).value,
        updated_at=run.created_at,
    )
    new = stmt.excluded
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[_p.pipeline, _p.partition],
            set_={"run_id": new.run_id, "state": new.state, "updated_at": new.updated_at},
            where=new.run_id > _p.run_id,
        )
    )


def write_state(conn: Connection, run: RunRecord, state: RunState, now: datetime) -> None:
    """Record a state change of ``run`` (outside the driver's step: marks, cancels)."""
    if run.partition is not None:
        conn.execute(UPDATE_STATUS, status_update_values(run, now) | {"state": state.value})


def states_stmt(pipeline: str, keys: Collection[str]) -> Select[Any]:
    """(partition, state, run id) of these keys of ``pipeline`` that have a run."""
    return select(_p.partition, _p.state, _p.run_id).where(
        _p.pipeline == pipeline, _p.partition.in_(sorted(keys))
    )


def in_states_stmt(pipeline: str, states: Iterable[str]) -> Select[Any]:
    """(partition, state) of the partitions of ``pipeline`` in one of ``states``."""
    return select(_p.partition, _p.state).where(
        _p.pipeline == pipeline, _p.state.in_(sorted(set(states)))
    )


def counts_stmt(pipeline: str) -> Select[Any]:
    """(state, partitions) of ``pipeline``, grouped in the database."""
    return select(_p.state, func.count()).where(_p.pipeline == pipeline).group_by(_p.state)


def between_stmt(
    pipeline: str, first: str, last: str, states: Iterable[str] | None = None
) -> Select[Any]:
    """(partition, state, run id) of the partitions of ``pipeline`` from ``first`` to ``last``
    in text order (both included), of ``states`` only if given."""
    stmt = select(_p.partition, _p.state, _p.run_id).where(
        _p.pipeline == pipeline, _p.partition >= first, _p.partition <= last
    )
    return stmt if states is None else stmt.where(_p.state.in_(sorted(set(states))))


def between(
    conn: Connection, pipeline: str, first: str, last: str, states: Iterable[str] | None = None
) -> dict[str, tuple[str, str]]:
    """Partition -> (state, newest run id) from ``first`` to ``last`` in text order (of
    ``states`` only, if given): one range of an index read."""
    return {k: (s, r) for k, s, r in _fetched(conn, between_stmt(pipeline, first, last, states))}


def present_among(
    conn: Connection, pipeline: str, ranges: Sequence[tuple[str, str]]
) -> set[str]:
    """The partitions of ``pipeline`` with a run in any of ``ranges`` (first, last, both
    included) of text: one statement for up to ``_RANGES`` of them, a range of the primary
    key each (SQLite reads every row of the pipeline for an OR of ranges)."""
    out: set[str] = set()
    for at in range(0, len(ranges), _RANGES):
        stmt = union_all(
            *(
                select(_p.partition).where(
                    _p.pipeline == pipeline, _p.partition >= lo, _p.partition <= hi
                )
                for lo, hi in ranges[at : at + _RANGES]
            )
        )
        out.update(row[0] for row in _fetched(conn, stmt))
    return out


def present_in(
    conn: Connection, pipeline: str, bounds: Sequence[tuple[str, str]]
) -> list[int]:
    """How many partitions have a run in each range (first, last) of text: a count of a
    primary-key range each, up to ``_RANGES`` of them in one statement (one round trip: 144
    months one by one cost 30 ms on PostgreSQL)."""
    out: list[int] = []
    for at in range(0, len(bounds), _RANGES):
        part = bounds[at : at + _RANGES]
        values: dict[str, str] = {"pipeline": pipeline}
        for i, (lo, hi) in enumerate(part):
            values |= {f"lo{i}": lo, f"hi{i}": hi}
        out += [int(n) for n in conn.execute(present_stmt(len(part)), values).one()]
    return out


#: Ranges counted per statement (two bound values each, within every backend's limit).
_RANGES = 500


@functools.cache
def present_stmt(n: int) -> TextClause:
    """How many partitions of ``:pipeline`` have a run from ``:loI`` to ``:hiI``, for each
    I below ``n``: one row of ``n`` counts."""
    counts = (
        f'(SELECT count(*) FROM {partition_status.name} WHERE pipeline = :pipeline '
        f'AND "partition" >= :lo{i} AND "partition" <= :hi{i})'
        for i in range(n)
    )
    return text(f"SELECT {', '.join(counts)}")


def states_of(
    conn: Connection, pipeline: str, keys: Collection[str]
) -> dict[str, tuple[str, str]]:
    """(state, newest run id) of each of ``keys`` that has a run: one indexed look-up each."""
    out: dict[str, tuple[str, str]] = {}
    ordered = sorted(keys)
    for i in range(0, len(ordered), 500):  # within every backend's limit on bound values
        found = conn.execute(states_stmt(pipeline, ordered[i : i + 500]))
        out.update({k: (s, r) for k, s, r in found})
    return out


def keys_in_states(conn: Connection, pipeline: str, states: Iterable[str]) -> dict[str, str]:
    """Partition -> state of the partitions whose state is one of ``states`` (by the index on
    pipeline and state)."""
    return dict(_fetched(conn, in_states_stmt(pipeline, states)))


def counts_by_state(conn: Connection, pipeline: str) -> dict[str, int]:
    """How many of the pipeline's partitions (with a run) are in each state, counted in SQL."""
    return {s: int(n) for s, n in conn.execute(counts_stmt(pipeline))}


def all_states(conn: Connection, pipeline: str) -> Mapping[str, tuple[str, str]]:
    """Partition -> (state, newest run id) of every partition of the pipeline with a run."""
    stmt = select(_p.partition, _p.state, _p.run_id).where(_p.pipeline == pipeline)
    return {k: (s, r) for k, s, r in _fetched(conn, stmt)}


def state_map(conn: Connection, pipeline: str) -> dict[str, str]:
    """Partition -> state of every partition of the pipeline with a run."""
    return dict(_fetched(conn, select(_p.partition, _p.state).where(_p.pipeline == pipeline)))


def _fetched(
    conn: Connection, stmt: Select[Any] | CompoundSelect, each: Sequence[Mapping[str, Any]] = ({},)
) -> list[Any]:
    """The rows of a statement over plain text columns, once per set of bound values in
    ``each``, fetched on the DBAPI cursor: for 100,000 rows SQLAlchemy's row handling took
    longer than the database (and compiling once per range, longer than counting it)."""
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    positional = conn.dialect.positional
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    out: list[Any] = []
    try:
        for values in each:
            params = {**compiled.params, **values}
            args = tuple(params[k] for k in compiled.positiontup or ()) if positional else params
            cursor.execute(compiled.string, args)
            out += cursor.fetchall()
        return out
    finally:
        cursor.close()
