"""Whether a format gives a frame back exactly, decided by looking at its dtypes or schema.

A frame gets one of three verdicts, without its data being read (except a type scan of
pandas object columns):

* exact: every column, the index and the frame's metadata have types the format is known
  to keep (the property test in tests/results checks these lists);
* lossy, with a reason naming the column: the format would change the values (a pandas
  column of dicts, an Arrow ``date64``, ...);
* verify: no rule says (a pandas object column of Decimals, a custom index...); the store
  writes the frame, reads it back and compares with :func:`difference`, and keeps the bytes
  it wrote when they are equal.

The frame's library is already imported when these run: the value is one of its frames.
"""

from __future__ import annotations

import datetime
import json
import zoneinfo
from dataclasses import dataclass
from typing import Any

from legato.results import serializers as s


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a format would do to a frame: ``reason`` is set when it would change it."""

    verify: bool = False
    reason: str | None = None


EXACT = Verdict()
VERIFY = Verdict(verify=True)

def _lossy(reason: str) -> Verdict:
    return Verdict(reason=reason)


def check(fmt: str, value: Any) -> Verdict:
    """Whether writing ``value`` (a frame ``format_of`` maps to ``fmt``'s kind) as ``fmt``
    and reading it back gives an equal frame."""
    if fmt == s.PANDAS:
        return _pandas(value)
    if fmt == s.IPC_PANDAS:
        # The dtype lists below are Parquet's; through Arrow IPC, always compare.
        verdict = _pandas(value)
        return verdict if verdict.reason else VERIFY
    if fmt in (s.POLARS, s.IPC_POLARS):
        return _polars(value)
    if fmt == s.ARROW:
        return _arrow(value)
    return EXACT  # pickle, and Arrow IPC for Arrow tables: Arrow's own format


def fallback(fmt: str, value: Any) -> str:
    """The format that keeps a frame ``fmt`` would change: Arrow IPC for Arrow tables and
    polars frames (pickle for polars Object columns, which IPC cannot hold either), pickle
    for pandas."""
    if fmt == s.ARROW:
        return s.IPC_ARROW
    if fmt == s.POLARS and _polars(value).reason is None:
        return s.IPC_POLARS
    return s.PICKLE


def difference(fmt: str, original: Any, back: Any) -> str | None:
    """Why ``back`` (``original`` after a round trip through ``fmt``) is not equal to it;
    None when it is."""
    if fmt in (s.PANDAS, s.IPC_PANDAS):
        return _pandas_difference(original, back)
    if fmt in (s.POLARS, s.IPC_POLARS):
        from polars.testing import assert_frame_equal

        try:
            assert_frame_equal(back, original, check_exact=True)
        except AssertionError as exc:
            return _first_line(exc)
        return None
    if not back.equals(original, check_metadata=True):
        return "the table changes"
    return None


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200] if text else type(exc).__name__


# -- pandas ---------------------------------------------------------------------------------

# Extension dtypes whose Parquet round trip is exact, by name (numpy-backed masked arrays).
_MASKED = frozenset(
    ("Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64", "Float32")
) | {"Float64", "boolean"}
# Parquet has no seconds unit for timestamps: datetime64[s] comes back as [ms].
_TIME_UNITS = frozenset(("ns", "us", "ms"))


def _pandas_major() -> int:
    import pandas as pd

    return int(pd.__version__.split(".", 1)[0])


def _exact_dtype(dtype: Any) -> bool:
    import numpy as np
    import pandas as pd

    if isinstance(dtype, np.dtype):
        kind = dtype.kind
        if kind in "biu" or kind == "m":
            return True
        if kind == "f":
            return dtype.itemsize <= 8  # not long double
        if kind == "M":
            return np.datetime_data(dtype)[0] in _TIME_UNITS
        return False  # object, complex, bytes, void...
    if getattr(dtype, "name", None) in _MASKED:
        return True
    if isinstance(dtype, pd.StringDtype):
        return dtype.storage == "pyarrow"  # string[python] comes back as pyarrow storage
    if isinstance(dtype, pd.DatetimeTZDtype):
        # pandas 2 turns time zone names read back into pytz zones: compare there instead.
        return (
            dtype.unit in _TIME_UNITS
            and isinstance(dtype.tz, zoneinfo.ZoneInfo | datetime.timezone)
            and _pandas_major() >= 3
        )
    if isinstance(dtype, pd.CategoricalDtype):
        # Categories of any other dtype (ints, objects) or none at all come back changed.
        cats = dtype.categories
        return len(cats) > 0 and isinstance(cats.dtype, pd.StringDtype) and _exact_dtype(cats.dtype)
    return False


def _plain_name(name: Any) -> bool:
    return name is None or isinstance(name, str)


def _kinds(values: Any) -> str:
    """The types of the non-null values of a column, for a reason: "dict", "int, str"."""
    names = sorted(
        {type(v).__name__ for v in values if not (v is None or (isinstance(v, float) and v != v))}
    )
    return ", ".join(names[:4]) + (", ..." if len(names) > 4 else "") or "no"


def _index_verdict(index: Any) -> Verdict:
    import pandas as pd

    for name in index.names:
        if not _plain_name(name):
            return _lossy(f"index name {name!r} comes back as a string")
    if isinstance(index, pd.RangeIndex):
        return EXACT
    freq = getattr(index, "freq", None)
    if freq is not None:
        return _lossy(f"the index has a frequency ({index.freqstr}), which Parquet does not keep")
    if type(index) in (pd.Index, pd.DatetimeIndex, pd.TimedeltaIndex) and _exact_dtype(
        index.dtype
    ):
        return EXACT
    return VERIFY


def _pandas(df: Any) -> Verdict:
    import pandas as pd

    columns = df.columns
    if not columns.is_unique:
        dups = sorted({str(c) for c in columns[columns.duplicated()]})
        return _lossy(f"duplicate column names {', '.join(map(repr, dups))}")
    if len(columns) == 0 and len(df.index) > 0:
        return _lossy("rows without columns, which Parquet does not keep")
    if not df.flags.allows_duplicate_labels:
        return _lossy("flags allows_duplicate_labels=False, which Parquet does not keep")
    if df.attrs:
        try:
            kept = json.loads(json.dumps(df.attrs)) == df.attrs
        except (TypeError, ValueError):
            kept = False
        if not kept:
            return _lossy("attrs that JSON (how Parquet keeps them) would change")
    if columns.inferred_type.startswith("mixed"):
        return _lossy("column labels of mixed types come back as strings")
    verify = not (
        type(columns) is pd.Index
        and isinstance(columns.dtype, pd.StringDtype)
        and columns.dtype.storage == "pyarrow"
        and _plain_name(columns.name)
    )
    index = _index_verdict(df.index)
    if index.reason:
        return index
    verify = verify or index.verify
    for i, dtype in enumerate(df.dtypes):
        if _exact_dtype(dtype):
            continue
        if dtype == "object":
            col = df.iloc[:, i]
            if pd.api.types.infer_dtype(col, skipna=True).startswith("mixed"):
                # Containers become Arrow lists and structs (dicts gain keys, sets and tuples
                # become arrays); mixed scalars are coerced or rejected.
                return _lossy(f"column {columns[i]!r} holds {_kinds(col)} values")
        verify = True
    return VERIFY if verify else EXACT


def _pandas_difference(original: Any, back: Any) -> str | None:
    import pandas as pd

    try:
        pd.testing.assert_frame_equal(back, original, check_exact=True)
    except AssertionError as exc:
        return _describe(original, back, exc)
    try:
        same_attrs = bool(back.attrs == original.attrs)
    except Exception:  # attrs holding arrays compare element-wise
        same_attrs = False
    return None if same_attrs else "its attrs change"


def _describe(original: Any, back: Any, exc: AssertionError) -> str:
    """Which part of a pandas frame a round trip changed, naming the column."""
    import pandas as pd

    if original.shape != back.shape:
        return f"its shape {original.shape} comes back as {back.shape}"
    for i, name in enumerate(original.columns):
        a, b = original.iloc[:, i], back.iloc[:, i]
        if a.dtype != b.dtype:
            return f"column {name!r}: {a.dtype} comes back as {b.dtype}"
        try:
            pd.testing.assert_series_equal(
                b, a, check_exact=True, check_names=False, check_index=False
            )
        except AssertionError:
            what = f"{_kinds(a)} values" if a.dtype == object else f"{a.dtype} values"
            return f"column {name!r}: its {what} change"
    try:
        pd.testing.assert_index_equal(back.columns, original.columns, check_exact=True)
    except AssertionError as e:
        return f"its column labels change: {_first_line(e)}"
    try:
        pd.testing.assert_index_equal(back.index, original.index, check_exact=True)
    except AssertionError as e:
        return f"its index changes: {_first_line(e)}"
    return _first_line(exc)


# -- polars ---------------------------------------------------------------------------------


def _holds_objects(dtype: Any) -> bool:
    import polars as pl

    if dtype == pl.Object:
        return True
    inner = getattr(dtype, "inner", None)
    if inner is not None and _holds_objects(inner):
        return True
    return any(_holds_objects(f.dtype) for f in getattr(dtype, "fields", None) or ())


def _polars(df: Any) -> Verdict:
    for name, dtype in df.schema.items():
        if _holds_objects(dtype):
            return _lossy(f"column {name!r} ({dtype}) holds Python objects")
    return EXACT


# -- Arrow ----------------------------------------------------------------------------------


def _arrow_problem(t: Any) -> str | None:
    """Why Parquet would not give back Arrow type ``t`` as it is; None if it does."""
    import pyarrow as pa
    import pyarrow.types as pt

    if isinstance(t, pa.BaseExtensionType):
        return "an extension type"
    if pt.is_struct(t):
        if t.num_fields == 0:
            return "a struct without fields"
        for i in range(t.num_fields):
            why = _arrow_problem(t.field(i).type)
            if why:
                return why
        return None
    if pt.is_dictionary(t):
        if pt.is_string(t.value_type) or pt.is_large_string(t.value_type):
            return None
        return "dictionary-encoded non-strings come back decoded"
    if pt.is_timestamp(t):
        return None if t.unit in _TIME_UNITS else "timestamp[s] comes back as timestamp[ms]"
    if pt.is_time32(t):
        return None if t.unit == "ms" else "time32[s] comes back as time32[ms]"
    if pt.is_date64(t):
        return "date64 comes back as date32"
    if any(
        check(t)
        for check in (
            pt.is_null,
            pt.is_boolean,
            pt.is_integer,
            pt.is_floating,
            pt.is_string,
            pt.is_large_string,
            pt.is_binary,
            pt.is_large_binary,
            pt.is_fixed_size_binary,
            pt.is_date32,
            pt.is_time64,
            pt.is_duration,
            pt.is_decimal,
            getattr(pt, "is_string_view", pt.is_string),
        )
    ):
        return None
    if pt.is_list(t) or pt.is_large_list(t) or pt.is_fixed_size_list(t) or pt.is_map(t):
        return "Parquet renames its item fields"
    return "Parquet is not known to keep it"


def _arrow(table: Any) -> Verdict:
    names = table.column_names
    if len(set(names)) != len(names):
        dups = sorted({n for n in names if names.count(n) > 1})
        return _lossy(f"duplicate column names {', '.join(map(repr, dups))}")
    for field in table.schema:
        why = _arrow_problem(field.type)
        if why:
            return _lossy(f"column {field.name!r} ({field.type}): {why}")
    return EXACT
