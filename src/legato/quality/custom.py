"""Checks written by users: Python predicates and pandera schemas."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from legato.definitions.check_spec import Check
from legato.quality.frames import library, rows_found
from legato.quality.outcome import SAMPLE_ROWS, Found, sample_of

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["pandera", "predicate"]


def _mask(result: Any, value: Any) -> Any:
    """A predicate's result as an Arrow boolean array or a bool."""
    import pyarrow as pa

    if isinstance(result, bool) or type(result).__name__ == "bool_":
        return bool(result)
    kind = library(result)
    if kind == "polars":
        if hasattr(result, "meta"):  # an expression: evaluate it on the frame
            result = value.select(result).to_series()
        return result.to_arrow()
    if isinstance(result, pa.Array | pa.ChunkedArray):
        return result
    if kind == "pandas":
        return pa.array(result.to_numpy(dtype=bool, na_value=False))
    return pa.array(result, type=pa.bool_())


def predicate(check: Check, value: Any, table: pa.Table) -> Found:
    import pyarrow as pa
    import pyarrow.compute as pc

    assert check.fn is not None
    mask = _mask(check.fn(value), value)
    total = table.num_rows
    if isinstance(mask, bool):
        message = f"{check.name} holds" if mask else f"{check.name} is false for the data"
        return Found(ok=mask, message=message, total=total)
    if not pa.types.is_boolean(mask.type):
        raise TypeError(f"the predicate gave {mask.type} values, not booleans")
    if len(mask) != total:
        raise ValueError(f"the predicate gave {len(mask)} values for {total} rows")
    return rows_found(table, pc.invert(pc.fill_null(mask, False)), f"fail {check.name}")


def _polars_schema(schema: Any) -> bool:
    # A DataFrameModel class makes its schema; a schema is one already.
    to_schema = getattr(schema, "to_schema", None)
    made = to_schema() if isinstance(schema, type) and to_schema is not None else schema
    return ".polars" in type(made).__module__


def pandera(check: Check, value: Any, table: pa.Table) -> Found:
    import pandera.errors as pe

    schema = check.args["schema"]
    if _polars_schema(schema):
        import polars as pl

        frame = value if library(value) == "polars" else pl.from_arrow(table)
    else:
        frame = value if library(value) == "pandas" else table.to_pandas()
    total = table.num_rows
    try:
        schema.validate(frame, lazy=True)
    except pe.SchemaErrors as exc:
        cases = exc.failure_cases
        if library(cases) == "polars":
            cases = cases.to_pandas()
        return _failures(cases, frame, total)
    except pe.SchemaError as exc:  # some schema-wide failures are raised alone
        return Found(ok=False, message=str(exc).splitlines()[0], total=total)
    return Found(ok=True, message=f"all {total} rows pass", failed=0, total=total)


def _failures(cases: Any, frame: Any, total: int) -> Found:
    """pandera's failure cases (a pandas frame: column, check, failure_case, index) as a
    found failure with the failing rows."""
    labels = cases["index"].dropna().unique().tolist()
    reasons: list[str] = []
    for (col, chk), group in cases.groupby(["column", "check"], dropna=False, sort=False):
        where = col if isinstance(col, str) else "data"
        if group["index"].isna().all():  # about the frame, not rows: say what pandera saw
            reasons.append(f"{where}: {chk}: {group['failure_case'].iloc[0]}")
        else:
            reasons.append(f"{where}: {chk} ({len(group)} rows)")
    message = f"{len(labels)} of {total} rows fail; " if labels else ""
    message += "; ".join(reasons[:10])
    rows: Sequence[Mapping[str, Any]] = []
    if labels:
        some = labels[:SAMPLE_ROWS]
        if library(frame) == "polars":
            rows = frame[[int(i) for i in some]].to_dicts()
        else:
            rows = frame.loc[some].to_dict("records")
    return Found(
        ok=False,
        message=message,
        failed=len(labels) if labels else None,
        total=total,
        sample=sample_of(rows),
    )
