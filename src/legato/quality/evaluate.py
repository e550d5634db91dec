"""``evaluate``: one check on one value (or SQL table) to one outcome."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from legato.definitions.check_spec import Check
from legato.quality import columnar, custom, sql_tables
from legato.quality.frames import arrow_view
from legato.quality.outcome import CheckOutcome, Found

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["evaluate", "evaluate_all"]

# Checks of each row, which no rows pass.
_ROW_WISE = frozenset(("not_null", "unique", "accepted_values", "relationship"))


def evaluate(
    check: Check,
    value: Any,
    *,
    now: datetime,
    engine: Any = None,
    related: Any = None,
) -> CheckOutcome:
    """Evaluate ``check`` on ``value``: a pandas or polars DataFrame, a pyarrow Table or
    RecordBatch, or a list of dicts; or, for a check with ``table=`` or a ``sql`` check
    given an ``engine`` (a SQLAlchemy Engine or Connection), the database (``value``
    unused). A ``sql`` check without an engine queries ``value`` as the table ``data``.

    ``now`` dates freshness checks. ``related`` gives a relationship check the other
    side's data: a mapping from asset key to data, a function of the key, or the data. A
    check that raises gives the outcome "error" with what it raised.
    """
    return _outcome(check, value, lambda: arrow_view(value), now, engine, related)


def evaluate_all(
    checks: Iterable[Check],
    value: Any,
    *,
    now: datetime,
    engine: Any = None,
    related: Any = None,
) -> list[CheckOutcome]:
    """``evaluate`` each of ``checks`` on ``value``, making its Arrow view once for all."""
    view = cache(lambda: arrow_view(value))
    return [_outcome(check, value, view, now, engine, related) for check in checks]


def _outcome(
    check: Check,
    value: Any,
    view: Callable[[], pa.Table],
    now: datetime,
    engine: Any,
    related: Any,
) -> CheckOutcome:
    try:
        found = _find(check, value, view, now=now, engine=engine, related=related)
    except Exception as exc:
        said = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        return CheckOutcome(
            name=check.name,
            severity=check.severity,
            outcome="error",
            message=f"{type(exc).__name__}: {said}",
            asset=check.asset,
        )
    return CheckOutcome(
        name=check.name,
        severity=check.severity,
        outcome="passed" if found.ok else "failed",
        failed_count=found.failed,
        total_count=found.total,
        sample=tuple(found.sample),
        message=found.message,
        asset=check.asset,
    )


def _find(
    check: Check,
    value: Any,
    view: Callable[[], pa.Table],
    *,
    now: datetime,
    engine: Any,
    related: Any,
) -> Found:
    table = check.args.get("table")
    if check.kind == "sql" and not table and engine is None and value is not None:
        return sql_tables.run_on_frame(check, view())
    if check.kind == "sql" or table:
        if engine is None:
            raise ValueError(f"the {check.kind} check {check.name!r} needs a SQL engine")
        if table:
            return sql_tables.on_table(check, engine, table, now)
        return sql_tables.run_query(check, engine)
    if value is None:
        raise ValueError("there is no data to check (the value is None)")
    data = view()
    if data.num_rows == 0 and data.num_columns == 0 and check.kind in _ROW_WISE:
        # An empty list of dicts: no rows, and so no columns to find, but nothing fails.
        return Found(ok=True, message="no rows", failed=0, total=0)
    if check.kind == "predicate":
        return custom.predicate(check, value, data)
    if check.kind == "pandera":
        return custom.pandera(check, value, data)
    if check.kind == "freshness":
        return columnar.freshness(check, data, related, now)
    builtin = columnar.BUILTINS.get(check.kind)
    if builtin is None:
        raise ValueError(f"unknown check kind {check.kind!r}")
    return builtin(check, data, related)
