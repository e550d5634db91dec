"""The ``unique`` check: which rows share their key with another row.

Hashing every key is what finding repeats costs in general (about 4 s for 10,000,000
shuffled integers on a 2-core machine), so the common shapes of key are told apart
cheaper first: in keys that never decrease a repeat is the next key (two comparison
passes); integers spread over a range not much wider than their count are counted in a
table indexed by value (one vectorised pass with numpy, which Arrow compute, lacking a
scatter, cannot do); other numbers and times are sorted with numpy, then compared with
their neighbours. Strings, decimals and combinations of columns are hashed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from legato.definitions.check_spec import Check
from legato.quality.frames import column, decoded
from legato.quality.outcome import SAMPLE_ROWS, Found, sample_of

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["repeats_found", "unique"]

# Integer keys over a range at most this many times their count are counted by value: a
# byte per value of the range to find out whether any repeats, eight more when some do.
_DENSE = 2


def unique(check: Check, table: pa.Table, related: Any) -> Found:
    import pyarrow as pa

    columns = list(check.args["columns"])
    # As in a SQL UNIQUE constraint, keys with a null are no repeats.
    keys = pa.table({name: decoded(column(table, name)) for name in columns}).drop_null()
    total = table.num_rows
    found = _single(keys.column(0)) if len(columns) == 1 else _grouped(keys, columns)
    if found is None:
        return Found(ok=True, message=f"all {total} rows pass", failed=0, total=total)
    failed, repeated, some = found
    rows = _rows_with(table, columns, some).to_pylist()
    return repeats_found(columns, failed, repeated, total, rows)


def repeats_found(
    columns: list[str], failed: int, repeated: int, total: int, rows: list[dict[str, Any]]
) -> Found:
    """What ``unique`` found when ``failed`` of ``total`` rows repeat ``repeated`` keys;
    ``rows`` some of them."""
    return Found(
        ok=False,
        message=f"{failed} of {total} rows share their {', '.join(columns)} with another row "
        f"({repeated} repeated values)",
        failed=failed,
        total=total,
        sample=sample_of(rows),
    )


Repeats = tuple[int, int, "pa.Table"]  # failing rows, repeated keys, some of those keys


def _single(values: Any) -> Repeats | None:
    import pyarrow as pa
    import pyarrow.compute as pc
    from pyarrow.lib import ArrowNotImplementedError

    n = len(values)
    if n < 2:
        return None
    head, tail = values.slice(0, n - 1), values.slice(1)
    try:
        ordered = pc.all(pc.less_equal(head, tail)).as_py()
    except ArrowNotImplementedError:  # a type without an order (structs, lists...)
        ordered = False
    if ordered:
        return _sorted(values, pc.equal(head, tail))
    t = values.type
    if pa.types.is_integer(t):
        low, high = (v.as_py() for v in pc.min_max(values).values())
        span = high - low + 1
        if span <= _DENSE * n:
            return _dense(values, low, span)
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_timestamp(t) or (
        pa.types.is_date(t) or pa.types.is_duration(t)
    ):
        # numpy sorts fixed-width numbers several times faster than Arrow hashes them;
        # in order, a key's repeats follow it.
        import numpy as np

        ordered = pa.chunked_array([pa.array(np.sort(values.to_numpy()), type=t)])
        return _sorted(ordered, pc.equal(ordered.slice(0, n - 1), ordered.slice(1)))
    return _grouped(pa.table({"key": values}), ["key"])


def _sorted(values: Any, same_as_next: Any) -> Repeats | None:
    """Repeats of keys in order, where a key's repeats follow it: a row repeats when it
    equals its neighbour before or after."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pc.any(same_as_next).as_py():
        return None
    no = pa.array([False])
    as_next = pa.chunked_array([*same_as_next.chunks, no], type=pa.bool_())
    as_before = pa.chunked_array([no, *same_as_next.chunks], type=pa.bool_())
    first = pc.and_(as_next, pc.invert(as_before))  # the first row of each repeated key
    failed = pc.sum(pc.or_(as_next, as_before)).as_py()
    repeated = pc.sum(first).as_py()
    some = pc.filter(values, first).slice(0, SAMPLE_ROWS)
    return failed, repeated, pa.table({"key": some})


def _dense(values: Any, low: int, span: int) -> Repeats | None:
    import numpy as np
    import pyarrow as pa

    numbers = values.to_numpy()
    # In the keys' own type, then as indexes: the range is small, however large the keys.
    base = numbers.dtype.type(low)
    offsets = (numbers - base).astype(np.intp)
    seen = np.zeros(span, dtype=np.bool_)
    seen[offsets] = True
    if int(np.count_nonzero(seen)) == len(values):
        return None
    counts = np.bincount(offsets, minlength=span)
    over = counts > 1
    some = np.flatnonzero(over)[:SAMPLE_ROWS].astype(numbers.dtype) + base
    key = pa.array(some, type=values.type)
    return int(counts[over].sum()), int(np.count_nonzero(over)), pa.table({"key": key})


def _grouped(keys: pa.Table, columns: list[str]) -> Repeats | None:
    import pyarrow.compute as pc

    counts = keys.group_by(columns).aggregate([([], "count_all")])
    dupes = counts.filter(pc.greater(counts.column("count_all"), 1))
    if not dupes.num_rows:
        return None
    some = dupes.slice(0, SAMPLE_ROWS).drop_columns(["count_all"])
    return pc.sum(dupes.column("count_all")).as_py(), dupes.num_rows, some


def _rows_with(table: pa.Table, columns: list[str], some: pa.Table) -> pa.Table:
    """Up to SAMPLE_ROWS rows of ``table`` whose key (``columns``) is one of ``some``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    mask = None
    for name, wanted in zip(columns, some.columns, strict=True):
        hit = pc.is_in(decoded(column(table, name)), value_set=wanted)
        mask = hit if mask is None else pc.and_(mask, hit)
    picked = pc.indices_nonzero(pc.fill_null(mask, False))
    if len(columns) > 1:
        # Each column's value is among the sample's: keep the rows whose combination is.
        near = pa.table({name: decoded(column(table, name)).take(picked) for name in columns})
        near = near.append_column("__row", picked)
        picked = near.join(some, columns, join_type="left semi").column("__row")
        picked = pc.take(picked, pc.sort_indices(picked))
    return table.take(picked.slice(0, SAMPLE_ROWS))
