"""The built-in checks on an Arrow table, with Arrow compute: each is a few vectorised
passes over the columns it names, never a Python loop over rows."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from legato.definitions.check_spec import Check
from legato.quality import repeats
from legato.quality.frames import arrow_view, column, decoded, library, rows_found, simple
from legato.quality.outcome import Found, jsonable, sample_of

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["BUILTINS", "keys_of", "type_matches", "utc"]


def not_null(check: Check, table: pa.Table, related: Any) -> Found:
    import pyarrow.compute as pc

    columns = check.args["columns"]
    mask = None
    for name in columns:
        nulls = pc.is_null(column(table, name), nan_is_null=True)
        mask = nulls if mask is None else pc.or_(mask, nulls)
    return rows_found(table, mask, f"have a null in {', '.join(columns)}")


def _not_in(values: Any, keys: Any) -> Any:
    """True where ``values`` is not null and not among ``keys``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    keys = keys if isinstance(keys, pa.Array | pa.ChunkedArray) else pa.array(list(keys))
    if isinstance(keys, pa.ChunkedArray):
        keys = keys.combine_chunks()
    keys = decoded(simple(keys))
    if pa.types.is_dictionary(values.type):
        # Look each dictionary entry up once, then spread the verdicts by the indices:
        # no decoding of the column's values.
        chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
        return pa.chunked_array(
            [pc.take(_not_in(chunk.dictionary, keys), chunk.indices) for chunk in chunks],
            type=pa.bool_(),
        )
    if keys.type != values.type:
        keys = keys.cast(values.type)
    return pc.and_(pc.invert(pc.is_in(values, value_set=keys)), pc.is_valid(values))


def accepted_values(check: Check, table: pa.Table, related: Any) -> Found:
    name, values = check.args["column"], check.args["values"]
    mask = _not_in(column(table, name), values)
    shown = ", ".join(repr(v) for v in list(values)[:10])
    return rows_found(table, mask, f"have a {name} outside {shown}")


def row_count(check: Check, table: pa.Table, related: Any) -> Found:
    return count_within(check, table.num_rows)


def count_within(check: Check, total: int) -> Found:
    low, high = check.args.get("min"), check.args.get("max")
    if low is not None and total < low:
        return Found(ok=False, message=f"{total} rows, fewer than {low}", total=total)
    if high is not None and total > high:
        return Found(ok=False, message=f"{total} rows, more than {high}", total=total)
    return Found(ok=True, message=f"{total} rows", total=total)


# A type named without width, unit or zone accepts any: "int" any integer, "timestamp" any
# timestamp. Other names are Arrow's, compared without spaces.
_FAMILIES: dict[str, Callable[[str], bool]] = {
    "any": lambda t: True,
    "int": lambda t: bool(re.fullmatch(r"u?int\d+", t)),
    "integer": lambda t: bool(re.fullmatch(r"u?int\d+", t)),
    "float": lambda t: t in ("halffloat", "float", "double", "float16", "float32", "float64"),
    "string": lambda t: t in ("string", "large_string", "string_view", "utf8", "large_utf8"),
    "str": lambda t: t in ("string", "large_string", "string_view", "utf8", "large_utf8"),
    "binary": lambda t: t in ("binary", "large_binary", "binary_view"),
    "bool": lambda t: t == "bool",
    "boolean": lambda t: t == "bool",
    "timestamp": lambda t: t.startswith("timestamp["),
    "date": lambda t: t in ("date32[day]", "date64[ms]", "date32", "date64"),
    "decimal": lambda t: t.startswith("decimal"),
    "list": lambda t: t.startswith(("list<", "large_list<")),
    "struct": lambda t: t.startswith("struct<"),
}
_ALIASES = {"float32": "float", "float64": "double", "utf8": "string", "date32": "date32[day]"}


def _canonical(type_name: Any) -> str:
    text = re.sub(r"\s+", "", str(type_name)).lower()
    return _ALIASES.get(text, text)


def type_matches(expected: Any, actual: str) -> bool:
    """Whether the Arrow type named ``actual`` is what ``expected`` (a name or a pyarrow
    type) asks for."""
    want, have = _canonical(expected), _canonical(actual)
    family = _FAMILIES.get(want)
    if family is not None:
        return family(have)
    if want == "string" or want == "large_string":
        return _FAMILIES["string"](have)
    return want == have


def schema_against(check: Check, actual: Mapping[str, str], total: int | None) -> Found:
    """The schema check of data whose columns have the types named in ``actual``."""
    expected: Mapping[str, Any] = check.args["columns"]
    wrong = []
    for name, want in expected.items():
        have = actual.get(name)
        if have is None or not type_matches(want, have):
            wrong.append({"column": name, "expected": _canonical(want), "actual": have})
    if check.args.get("exact"):
        extra = [name for name in actual if name not in expected]
        wrong += [{"column": n, "expected": None, "actual": actual[n]} for n in extra]
    if not wrong:
        return Found(ok=True, message=f"{len(expected)} columns as expected", total=total)
    parts = [
        f"{w['column']}: missing"
        if w["actual"] is None
        else f"{w['column']}: not expected"
        if w["expected"] is None
        else f"{w['column']}: {w['actual']}, expected {w['expected']}"
        for w in wrong
    ]
    return Found(ok=False, message="; ".join(parts), total=total, sample=sample_of(wrong))


def schema(check: Check, table: pa.Table, related: Any) -> Found:
    import pyarrow as pa

    # A dictionary-encoded column (a polars Categorical, a pandas category) holds values
    # of its value type: that is the type it is checked as.
    actual = {
        field.name: str(field.type.value_type if pa.types.is_dictionary(field.type) else field.type)
        for field in table.schema
    }
    return schema_against(check, actual, table.num_rows)


def keys_of(check: Check, related: Any) -> Any:
    """The other side's keys of a relationship check: its ``values``, or what ``related``
    gives for its asset (a mapping by asset key, a function of the key, or the data)."""
    import pyarrow as pa

    other = check.args.get("values")
    key = check.args.get("to")
    if other is None:
        if related is None:
            raise ValueError(f"relationship: no data given for {key!r} (related=)")
        if isinstance(related, Mapping) and key in related:
            other = related[key]
        elif callable(related):
            other = related(key)
        else:
            other = related
    if isinstance(other, pa.Array | pa.ChunkedArray):
        return other
    if isinstance(other, set | frozenset | list | tuple) and not (
        other and all(isinstance(row, Mapping) for row in other)
    ):
        return pa.array(list(other))
    kind = library(other)
    if kind in ("pandas", "polars") and not hasattr(other, "columns"):  # a Series
        return other.to_arrow() if kind == "polars" else pa.array(other)
    return column(arrow_view(other), check.args["to_column"])


def relationship(check: Check, table: pa.Table, related: Any) -> Found:
    name = check.args["column"]
    mask = _not_in(column(table, name), keys_of(check, related))
    target = check.args.get("to") or "the given values"
    return rows_found(table, mask, f"have a {name} not in {target}")


def utc(value: Any) -> datetime:
    """A time read from data as an aware UTC datetime (naive ones are taken as UTC)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime) and isinstance(value, date):
        value = datetime(value.year, value.month, value.day)
    if not isinstance(value, datetime):
        raise TypeError(f"freshness: {value!r} is not a time")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def fresh_within(check: Check, newest: Any, now: datetime, total: int | None) -> Found:
    name = check.args["column"]
    max_age = timedelta(seconds=check.args["max_age"])
    if newest is None:
        return Found(ok=False, message=f"no {name} values to date the data by", total=total)
    when = utc(newest)
    age = utc(now) - when
    detail = [{"column": name, "newest": jsonable(when), "age_seconds": age.total_seconds()}]
    if age > max_age:
        return Found(
            ok=False,
            message=f"newest {name} {when.isoformat()} is {age} old, more than {max_age}",
            total=total,
            sample=detail,
        )
    return Found(ok=True, message=f"newest {name} {when.isoformat()} is {age} old", total=total)


def freshness(check: Check, table: pa.Table, related: Any, now: datetime) -> Found:
    import pyarrow.compute as pc

    newest = pc.max(column(table, check.args["column"])).as_py()
    return fresh_within(check, newest, now, table.num_rows)


BUILTINS: dict[str, Callable[[Check, pa.Table, Any], Found]] = {
    "not_null": not_null,
    "unique": repeats.unique,
    "accepted_values": accepted_values,
    "row_count": row_count,
    "schema": schema,
    "relationship": relationship,
}
