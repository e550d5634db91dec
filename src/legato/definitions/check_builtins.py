"""The built-in checks as constructors: ``not_null("order_id")``, ``unique("order_id")``...

Each gives a ``Check`` whose ``kind`` and ``args`` say what to test; nothing here looks at
data. Every constructor takes ``Options`` (severity, name, asset, description), and the
built-ins ``table`` too (a SQL table to check in its database instead of the task's
returned value).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from typing import Any, Literal, TypedDict, Unpack

from legato.definitions.check_spec import Check
from legato.definitions.durations import parse_duration

__all__ = [
    "Options",
    "QueryOptions",
    "TableOptions",
    "accepted_values",
    "freshness",
    "not_null",
    "pandera",
    "predicate",
    "relationship",
    "row_count",
    "schema",
    "sql",
    "unique",
]


class Options(TypedDict, total=False):
    """What every check takes: ``severity`` ("block", the default, or "warn"), ``name``
    (shown and stored), ``asset`` (the one it checks when a task produces several) and
    ``description``."""

    severity: str
    name: str | None
    asset: str | None
    description: str | None


class QueryOptions(Options, total=False):
    """``Options``, and ``table``: a SQL table to check in its database."""

    table: str | None


class TableOptions(QueryOptions, total=False):
    """``QueryOptions``, and ``resource``: the ``sql`` resource whose engine reaches the
    table's database in a run."""

    resource: str | None


_KNOWN = frozenset(TableOptions.__annotations__) | frozenset(Options.__annotations__)


def _check(
    kind: str,
    default_name: str,
    args: dict[str, Any],
    options: Mapping[str, Any],
    fn: Callable[..., Any] | None = None,
) -> Check:
    unknown = sorted(set(options) - _KNOWN)
    if unknown:
        raise TypeError(f"{kind}() got an unexpected keyword argument {unknown[0]!r}")
    table = options.get("table")
    if table is not None:
        if not isinstance(table, str) or not table:
            raise ValueError(f"{kind}: table must be a table name")
        args["table"] = table
    resource = options.get("resource")
    if resource is not None:
        if not isinstance(resource, str) or not resource:
            raise ValueError(f"{kind}: resource must be a resource name")
        if table is None:
            raise ValueError(f"{kind}: resource= says where table= is; give the table too")
        args["resource"] = resource
    return Check(
        name=options.get("name") or default_name,
        kind=kind,
        args=args,
        severity=options.get("severity") or "block",
        asset=options.get("asset"),
        fn=fn,
        description=options.get("description"),
    )


def _columns(kind: str, columns: Iterable[str]) -> tuple[str, ...]:
    names = tuple(columns)
    if not names:
        raise ValueError(f"{kind}: name at least one column")
    for column in names:
        if not isinstance(column, str) or not column:
            raise ValueError(f"{kind}: column names are strings, got {column!r}")
    return names


def _of_columns(kind: str, columns: Iterable[str], options: Mapping[str, Any]) -> Check:
    names = _columns(kind, columns)
    return _check(kind, f"{kind}({', '.join(names)})", {"columns": names}, options)


def not_null(*columns: str, **options: Unpack[TableOptions]) -> Check:
    """Fails the rows where any of ``columns`` is null (NaN counts as null)."""
    return _of_columns("not_null", columns, options)


def unique(*columns: str, **options: Unpack[TableOptions]) -> Check:
    """Fails the rows whose combination of ``columns`` another row has too.

    As in a SQL UNIQUE constraint, a row with a null in any of ``columns`` is no duplicate
    (add ``not_null`` to refuse nulls).
    """
    return _of_columns("unique", columns, options)


def accepted_values(
    column: str,
    values: Iterable[Any],
    **options: Unpack[TableOptions],
) -> Check:
    """Fails the rows whose ``column`` holds a value not in ``values`` (nulls pass)."""
    (col,) = _columns("accepted_values", [column])
    accepted = tuple(values)
    if not accepted:
        raise ValueError("accepted_values: give at least one value")
    return _check(
        "accepted_values",
        f"accepted_values({col})",
        {"column": col, "values": accepted},
        options,
    )


def row_count(
    min: int | None = None,
    max: int | None = None,
    **options: Unpack[TableOptions],
) -> Check:
    """Fails when the number of rows is below ``min`` or above ``max`` (both inclusive)."""
    for bound in (min, max):
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int)):
            raise ValueError(f"row_count: bounds are whole numbers, got {bound!r}")
    if min is None and max is None:
        raise ValueError("row_count: give min, max or both")
    if min is not None and max is not None and min > max:
        raise ValueError(f"row_count: min {min} is above max {max}")
    return _check(
        "row_count",
        "row_count",
        {"min": min, "max": max},
        options,
    )


def schema(
    columns: Mapping[str, Any],
    *,
    exact: bool = False,
    **options: Unpack[TableOptions],
) -> Check:
    """Fails when a column of ``columns`` is missing or of another type; with ``exact``,
    also when the data has columns ``columns`` does not name.

    Types are Arrow type names ("int64", "string", "timestamp[us]", "timestamp[us,
    tz=UTC]", "decimal128(10, 2)") or pyarrow types; "int", "float", "timestamp"... without
    a width or unit accept any width or unit, and "any" any type.
    """
    if not isinstance(columns, Mapping) or not columns:
        raise ValueError("schema: columns is a mapping of column names to types")
    _columns("schema", columns)
    return _check(
        "schema",
        "schema",
        {"columns": dict(columns), "exact": bool(exact)},
        options,
    )


def relationship(
    column: str,
    asset_or_values: Any,
    to_column: str | None = None,
    *,
    to_table: str | None = None,
    **options: Unpack[TableOptions],
) -> Check:
    """Fails the rows whose ``column`` value is not among the other side's keys (nulls pass).

    The other side is an asset key ("shop.customers"), whose data is given when the check
    is evaluated, with ``to_column`` its key column; or the accepted keys themselves (a set,
    a list, a frame or an Arrow table/array). On a SQL ``table``, ``to_table`` names the
    other side's table in the same database and the check runs there as one query.
    """
    (col,) = _columns("relationship", [column])
    if isinstance(asset_or_values, str):
        key, values = asset_or_values, None
        if to_column is None and to_table is None:
            raise ValueError(f"relationship: name the key column of {key!r} (to_column=)")
    else:
        key, values = None, asset_or_values
    to_col = to_column or col
    target = f"{to_table or key}.{to_col}" if (to_table or key) else "values"
    return _check(
        "relationship",
        f"relationship({col} -> {target})",
        {"column": col, "to": key, "to_column": to_col, "to_table": to_table, "values": values},
        options,
    )


def freshness(
    column: str,
    max_age: str | float | timedelta,
    **options: Unpack[TableOptions],
) -> Check:
    """Fails when the newest value of the time ``column`` is older than ``max_age`` ("6h",
    seconds or a timedelta) at the evaluation's ``now``. Naive times are read as UTC."""
    (col,) = _columns("freshness", [column])
    seconds = parse_duration(max_age, field="freshness max_age")
    if seconds is None or seconds <= 0:
        raise ValueError("freshness: max_age must be positive")
    return _check(
        "freshness",
        f"freshness({col})",
        {"column": col, "max_age": seconds},
        options,
    )


def sql(
    query: str,
    *,
    returns: Literal["auto", "rows", "count"] = "auto",
    resource: str | None = None,
    **options: Unpack[QueryOptions],
) -> Check:
    """A query that gives the failing rows, or their count: run in a database through a
    SQL engine, or, on a task's output, by DuckDB with the output as the table ``data``.

    With ``returns="auto"``, a result of one row and one integer column whose name holds
    "count" (``SELECT count(*) ...``) is a count; anything else is the failing rows.
    ``resource`` names the ``sql`` resource whose engine runs it.
    """
    if not isinstance(query, str) or not query.strip():
        raise ValueError("sql: the query is empty")
    if returns not in ("auto", "rows", "count"):
        raise ValueError(f"sql: returns is 'auto', 'rows' or 'count', not {returns!r}")
    return _check(
        "sql",
        "sql",
        {"query": query, "returns": returns, "resource": resource},
        options,
    )


def predicate(
    fn: Callable[[Any], Any],
    **options: Unpack[Options],
) -> Check:
    """A Python function of the data: it returns a boolean mask (True for the rows that
    pass) as a pandas or polars Series, an Arrow array or a list, or one bool for all."""
    if not callable(fn):
        raise ValueError(f"predicate: {fn!r} is not callable")
    return _check(
        "predicate",
        getattr(fn, "__name__", "predicate"),
        {},
        options,
        fn=fn,
    )


def pandera(
    schema: Any,
    **options: Unpack[Options],
) -> Check:
    """A pandera schema (pandas or polars ``DataFrameSchema``, or a ``DataFrameModel``
    class) as a check: the rows it rejects fail."""
    if not hasattr(schema, "validate"):
        raise ValueError(f"pandera: {schema!r} is not a pandera schema")
    default = getattr(schema, "name", None) or getattr(schema, "__name__", None) or "pandera"
    return _check(
        "pandera",
        f"pandera({default})" if default != "pandera" else default,
        {"schema": schema},
        options,
    )
