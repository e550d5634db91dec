"""The store's SQL statements, built once at import, and the fast path that runs them.

:class:`Prepared` compiles a Core statement once per dialect and then executes it directly on
the DBAPI cursor, applying the column types' bind processors itself. ``Store.apply`` runs once
per driver step; going through ``Connection.execute`` costs ~60 us per statement in
SQLAlchemy bookkeeping, several times what SQLite needs for the statement itself. Only
statements whose parameters are all plain ``bindparam``s qualify, and cursor-level events
(e.g. ``echo``) do not see them. Transactions are still managed by the SQLAlchemy connection.

On PostgreSQL the statements whose row count ``apply`` must check (the lease renewal, the
task-run updates) check it themselves: wrapped so that PostgreSQL raises an error carrying
a mark (:data:`LEASE_LOST`, :data:`MISSING_TASK_RUN`) when they did not touch exactly one row,
which aborts the transaction. Nothing then waits for a row count, so a whole step (BEGIN, its
statements and COMMIT) can be sent in one pipeline: one round trip to the server.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Boolean,
    Float,
    Integer,
    String,
    Text,
    bindparam,
    case,
    insert,
    literal,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement
from sqlalchemy.sql.functions import FunctionElement

from legato.domain.states import RunState
from legato.store.partition_status import UPDATE_STATUS
from legato.store.schema import UTCDateTime, alert_facts, attempts, events, runs, task_runs

_r = runs.c
_t = task_runs.c


class lease_now(FunctionElement[datetime]):
    """The time leases are judged by: the database server's clock on PostgreSQL, so that
    schedulers on machines whose clocks disagree still agree on who holds a run; on SQLite
    (one machine) the caller's ``now`` bind parameter."""

    type = _r.lease_expires_at.type
    inherit_cache = True


class lease_until(FunctionElement[datetime]):
    """When a lease taken now runs out: the server's clock plus ``k_ttl`` seconds on
    PostgreSQL; the caller's ``k_expires`` bind parameter on SQLite."""

    type = _r.lease_expires_at.type
    inherit_cache = True


@compiles(lease_now)
def _lease_now(element: lease_now, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(bindparam("now", type_=_r.lease_expires_at.type), **kw)


@compiles(lease_now, "postgresql")
def _lease_now_pg(element: lease_now, compiler: SQLCompiler, **kw: Any) -> str:
    # The columns hold naive UTC; statement_timestamp(), not now(): a long transaction must
    # not judge leases by the time it began.
    return "(statement_timestamp() AT TIME ZONE 'UTC')"


@compiles(lease_until)
def _lease_until(element: lease_until, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(bindparam("k_expires", type_=_r.lease_expires_at.type), **kw)


@compiles(lease_until, "postgresql")
def _lease_until_pg(element: lease_until, compiler: SQLCompiler, **kw: Any) -> str:
    ttl = compiler.process(bindparam("k_ttl", type_=Float()), **kw)
    return f"((statement_timestamp() AT TIME ZONE 'UTC') + make_interval(secs => {ttl}))"


def lease_params(expires_at: datetime, now: datetime) -> dict[str, Any]:
    """Bind parameters of statements using :class:`lease_now` / :class:`lease_until`: each
    dialect takes the ones it needs. The lease's length is ``expires_at - now``."""
    return {"now": now, "k_expires": expires_at, "k_ttl": (expires_at - now).total_seconds()}


# A lease is free for a newcomer when nobody holds it or it ran out (by the lease clock).
LEASE_FREE = or_(_r.lease_owner.is_(None), _r.lease_expires_at < lease_now())
RESUMABLE_STATES = (RunState.RUNNING.value, RunState.QUEUED.value)

RENEW_LEASE = (
    update(runs)
    .where(_r.id == bindparam("k_id"), _r.lease_owner == bindparam("k_owner"))
    .values(lease_expires_at=lease_until())
)
# The driver's copy of the run may predate a concurrent request_cancel: OR keeps the request.
RENEW_LEASE_AND_UPDATE_RUN = RENEW_LEASE.values(
    state=bindparam("state"),
    started_at=bindparam("started_at", type_=_r.started_at.type),
    finished_at=bindparam("finished_at", type_=_r.finished_at.type),
    error=bindparam("error"),
    cancel_requested=or_(_r.cancel_requested, bindparam("cancel_requested", type_=Boolean)),
    code_version=bindparam("code_version"),
)
_ACQUIRE = update(runs).values(lease_owner=bindparam("k_owner"), lease_expires_at=lease_until())
ACQUIRE_LEASE = _ACQUIRE.where(
    _r.id == bindparam("k_id"), or_(LEASE_FREE, _r.lease_owner == bindparam("k_owner"))
)
ACQUIRE_LEASE_TAKE_OVER = _ACQUIRE.where(
    _r.id == bindparam("k_id"),
    or_(LEASE_FREE, _r.lease_owner.in_([bindparam("k_owner"), bindparam("k_take_over")])),
)
RELEASE_LEASE = (
    update(runs)
    .where(_r.id == bindparam("k_id"), _r.lease_owner == bindparam("k_owner"))
    .values(lease_owner=None, lease_expires_at=None)
)
SELECT_RUN = select(runs).where(_r.id == bindparam("k_id"))
INSERT_RUN = insert(runs)
SELECT_TASK_RUNS = select(task_runs).order_by(
    # Plain tasks first (by key), then the elements of each mapped node in index order.
    case((_t.map_index.is_(None), 0), else_=1),
    _t.node,
    _t.map_index,
    _t.task_key,
)


def _insert_all(table: Any) -> Any:
    # Explicit bindparams for every column (but an autoincrement id): compiles standalone.
    return insert(table).values(
        {c.name: bindparam(c.name, type_=c.type) for c in table.c if c is not table.c.get("id")}
    )


INSERT_TASK_RUN = _insert_all(task_runs)
INSERT_ATTEMPT = _insert_all(attempts)
INSERT_EVENT = _insert_all(events)
# An alert fact a step's event raises (a run finished, a task failed for good), with the
# run's pipeline, partition and backfill copied from its row; a plain statement, so that a
# run's last step is pipelined on PostgreSQL like the others.
INSERT_RUN_FACT = insert(alert_facts).from_select(
    ["kind", "pipeline", "run_id", "task_key", "partition", "backfill_id", "message", "at"],
    select(
        bindparam("f_kind", type_=String),
        _r.pipeline,
        _r.id,
        bindparam("f_task_key", type_=String),
        _r.partition,
        _r.backfill_id,
        bindparam("f_message", type_=Text),
        bindparam("f_at", type_=UTCDateTime),
    ).where(_r.id == bindparam("f_run_id")),
)
# The elements of a mapped node (NewElements), numbered by a recursive CTE: the database
# makes the rows and their "queued" events without a parameter set per row.
_numbers = select(literal(0, Integer).label("n")).cte("element_numbers", recursive=True)
_numbers = _numbers.union_all(
    select((_numbers.c.n + 1).label("n")).where(_numbers.c.n + 1 < bindparam("count"))
)
_element_key = bindparam("node", type_=String()) + "[" + sql_cast(_numbers.c.n, String()) + "]"
INSERT_ELEMENTS = insert(task_runs).from_select(
    ["run_id", "task_key", "node", "map_index", "state", "attempt"],
    select(
        bindparam("run_id", type_=String()),
        _element_key,
        bindparam("node", type_=String()),
        _numbers.c.n,
        literal_column("'queued'"),
        literal_column("0"),
    ).order_by(_numbers.c.n),
)
INSERT_ELEMENT_EVENTS = insert(events).from_select(
    ["run_id", "task_key", "kind", "new_state", "at"],
    select(
        bindparam("run_id", type_=String()),
        _element_key,
        literal_column("'task_state'"),
        literal_column("'queued'"),
        bindparam("at", type_=events.c.at.type),
    ).order_by(_numbers.c.n),
)
UPDATE_TASK_RUN = (
    update(task_runs)
    .where(_t.run_id == bindparam("k_run_id"), _t.task_key == bindparam("k_task_key"))
    .values({c.name: bindparam(c.name, type_=c.type) for c in task_runs.c if not c.primary_key})
)


#: The marks of the errors raised by PostgreSQL when a checked statement touched no row.
LEASE_LOST = "legato-lease-lost"
MISSING_TASK_RUN = "legato-missing-task-run"


def _one_row_or_fail(update_sql: str, mark: str) -> str:
    # A failed cast is PostgreSQL's only built-in way to raise from a query without a
    # function; the ELSE depends on count(*), so the planner cannot fold it to an error.
    return (
        f"WITH checked AS ({update_sql} RETURNING 1) SELECT CASE WHEN count(*) = 1 THEN 1 "
        f"ELSE CAST('{mark} ' || count(*) AS INTEGER) END FROM checked"
    )


class Prepared:
    """A statement compiled for one dialect, run on the raw DBAPI cursor with executemany.

    With ``one_row_or`` on PostgreSQL, each execution fails with an error mentioning that mark
    unless it touched exactly one row (see the module's docstring); ``checked`` tells.
    """

    __slots__ = (
        "_convert", "_dbapi_error", "_dialect", "_positional", "_procs", "_timestamps", "checked",
        "sql",
    )

    def __init__(
        self, stmt: ClauseElement, dialect: Dialect, *, one_row_or: str | None = None
    ) -> None:
        compiled = cast(SQLCompiler, stmt.compile(dialect=dialect))
        if compiled.escaped_bind_names or compiled.post_compile_params:
            raise ValueError("statement needs SQLAlchemy's parameter handling; not preparable")
        binds = compiled.binds
        self._positional = bool(dialect.positional)
        # qmark (SQLite) binds by position, in SQL order; pyformat (psycopg) by name.
        keys: Sequence[str] = (compiled.positiontup or []) if self._positional else list(binds)
        self._procs: tuple[tuple[str, Callable[[Any], Any] | None], ...] = tuple(
            (k, binds[k].type.dialect_impl(dialect).bind_processor(dialect)) for k in keys
        )
        # Timestamps cost microseconds each to convert, and the rows of one step share a
        # few (elements started together, outcomes taken together): converted once a call.
        self._timestamps = frozenset(k for k in keys if isinstance(binds[k].type, UTCDateTime))
        self._convert = _converter(self._procs, self._positional)
        self.sql: str = compiled.string
        self.checked = one_row_or is not None and dialect.name == "postgresql"
        if self.checked:
            self.sql = _one_row_or_fail(self.sql, str(one_row_or))
        self._dialect = dialect
        self._dbapi_error: type[Exception] = dialect.loaded_dbapi.Error

    def _converters(self) -> tuple[tuple[str, Callable[[Any], Any] | None], ...]:
        """The bind processors, those of timestamps remembering what they converted."""
        if not self._timestamps:
            return self._procs
        return tuple(
            (k, _remembering(p) if p is not None and k in self._timestamps else p)
            for k, p in self._procs
        )

    def execute(self, conn: Connection, values: Sequence[dict[str, Any]]) -> int:
        """Run for each dict in ``values`` inside ``conn``'s transaction; rows affected
        (meaningless for a ``checked`` statement, and inside a pipeline)."""
        params: list[Any] = self._convert(values, *(p for _, p in self._converters()))
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            if len(params) == 1:
                cursor.execute(self.sql, params[0])
            else:
                cursor.executemany(self.sql, params)
            return int(cursor.rowcount)
        except self._dbapi_error as exc:
            # The same exception classes (IntegrityError, OperationalError...) as
            # Connection.execute would raise, so callers need not care which path ran.
            raise DBAPIError.instance(
                self.sql, params, exc, self._dbapi_error, dialect=self._dialect
            ) from exc
        finally:
            cursor.close()


def _converter(
    procs: Sequence[tuple[str, Callable[[Any], Any] | None]], positional: bool
) -> Callable[..., list[Any]]:
    """A function turning a list of parameter dicts into the DBAPI's rows, the bind
    processors given after the list. Written out for the statement (as dataclasses writes
    its ``__init__``): a loop over the columns would cost more than the conversion itself,
    once per column of each of a step's thousands of rows."""
    names = [f"p{i}" for i in range(len(procs))]
    items = [
        f"v[{key!r}]" if proc is None else f"{name}(v[{key!r}])"
        for (key, proc), name in zip(procs, names, strict=True)
    ]
    if positional:
        row = "(" + "".join(f"{item}, " for item in items) + ")"
    else:
        pairs = zip((key for key, _ in procs), items, strict=True)
        row = "{" + ", ".join(f"{key!r}: {item}" for key, item in pairs) + "}"
    source = f"def convert(values, {', '.join(names)}):\n    return [{row} for v in values]\n"
    scope: dict[str, Any] = {}
    exec(source, scope)  # the source is made of the statement's own bind names only
    return cast("Callable[..., list[Any]]", scope["convert"])


def _remembering(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    memo: dict[Any, Any] = {}

    def remembered(value: Any) -> Any:
        try:
            return memo[value]
        except KeyError:
            out = memo[value] = convert(value)
            return out
        except TypeError:  # unhashable: the processor says what is wrong with it
            return convert(value)

    return remembered


class PreparedSet:
    """The hot-path statements compiled for one dialect (``checked`` on PostgreSQL)."""

    def __init__(self, dialect: Dialect) -> None:
        self.renew_lease = Prepared(RENEW_LEASE, dialect, one_row_or=LEASE_LOST)
        self.renew_lease_and_update_run = Prepared(
            RENEW_LEASE_AND_UPDATE_RUN, dialect, one_row_or=LEASE_LOST
        )
        self.checked = self.renew_lease.checked
        self.insert_task_run = Prepared(INSERT_TASK_RUN, dialect)
        self.update_task_run = Prepared(UPDATE_TASK_RUN, dialect, one_row_or=MISSING_TASK_RUN)
        self.insert_attempt = Prepared(INSERT_ATTEMPT, dialect)
        self.insert_event = Prepared(INSERT_EVENT, dialect)
        self.insert_run_fact = Prepared(INSERT_RUN_FACT, dialect)
        self.update_partition_status = Prepared(UPDATE_STATUS, dialect)
