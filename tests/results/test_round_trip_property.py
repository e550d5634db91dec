"""Property: what a downstream task receives equals what its upstream task returned.

Hypothesis builds pandas, polars and Arrow frames over many dtypes and awkward values; an
upstream attempt returns each one, a downstream attempt loads it (both through the worker's
own code), through a local folder and through an fsspec ``memory://`` store. Equality is
what a user means: ``assert_frame_equal(check_exact=True)`` and equal ``attrs`` for pandas,
``assert_frame_equal`` (dtypes included) for polars, schema with metadata and values for
Arrow; NaN equals NaN.

Deterministic: derandomized, a fixed number of examples, no example database.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import uuid
import zoneinfo
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

hypothesis = pytest.importorskip("hypothesis")
pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")
pl = pytest.importorskip("polars")
pytest.importorskip("fsspec")

import numpy as np  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from legato import task  # noqa: E402
from legato.executors.interface import AttemptSpec, Stored  # noqa: E402
from legato.executors.worker import run_attempt  # noqa: E402
from legato.results import ResultStore  # noqa: E402

SETTINGS = settings(
    derandomize=True,
    database=None,
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- going through two attempts ------------------------------------------------------------

_returned: list[Any] = []
_received: list[Any] = []


@task
def upstream() -> Any:
    return _returned[-1]


@task
def downstream(value: Any) -> None:
    _received.append(value)


def _spec(logs: Path, key: str, args: tuple[Any, ...] = ()) -> AttemptSpec:
    run = uuid.uuid4().hex
    return AttemptSpec(
        run_id=run, pipeline="p", node=key, task_key=key, map_index=None, attempt=1,
        args=args, kwargs=(), params={}, partition=None, result_key=f"{run}/{key}",
        log_path=str(logs / f"{run}-{key}.log"), timeout=None,
    )


def through_tasks(value: Any, store: ResultStore, logs: Path) -> Any:
    """Return ``value`` from one attempt and hand it to the next; what that one got."""
    _returned.append(value)
    _received.clear()
    up = run_attempt(_spec(logs, "upstream"), upstream, store, capture="thread")
    assert up.status == "succeeded", up.traceback
    assert up.result is not None
    down = run_attempt(_spec(logs, "downstream", (Stored(up.result),)), downstream, store,
                       capture="thread")
    assert down.status == "succeeded", down.traceback
    _returned.clear()
    return _received.pop()


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[ResultStore], Path]:
    root = tmp_path_factory.mktemp("round-trip")
    (root / "logs").mkdir()
    local = ResultStore(root / "results")
    memory = ResultStore(f"memory://legato-property-{uuid.uuid4().hex}")
    return [local, memory], root / "logs"


def check_all(stores: tuple[list[ResultStore], Path], value: Any,
              same: Callable[[Any, Any], None]) -> None:
    targets, logs = stores
    for store in targets:
        got = through_tasks(value, store, logs)
        assert type(got) is type(value)
        same(got, value)


# -- equality ------------------------------------------------------------------------------


def same_values(a: Any, b: Any) -> bool:
    """Deep equality in which NaN equals NaN and types must match."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same_values(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_values(a[k], b[k]) for k in a)
    return bool(a == b)


def same_pandas(got: Any, want: Any) -> None:
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert got.attrs == want.attrs


def same_polars(got: Any, want: Any) -> None:
    from polars.testing import assert_frame_equal

    assert got.schema == want.schema
    assert_frame_equal(got, want, check_exact=True)


def same_arrow(got: Any, want: Any) -> None:
    assert got.schema.equals(want.schema, check_metadata=True), (got.schema, want.schema)
    # Table.equals says NaN != NaN; compare values in Python, where this test decides.
    assert same_values(got.to_pylist(), want.to_pylist())


# -- values --------------------------------------------------------------------------------

ROWS = st.integers(0, 5)
TEXT = st.text(max_size=6)  # any code point but surrogates: accents, emoji, NUL
FLOATS = st.floats(allow_nan=True, allow_infinity=True)
# Instants around the 2021 DST changes in Europe and America, at nanosecond precision.
DST_NS = st.sampled_from([
    1616893200_000_000_000,  # 2021-03-28 01:00 UTC: Paris jumps to summer time
    1635642000_000_000_000,  # 2021-10-31 01:00 UTC: Paris falls back
    1615705200_000_000_000,  # 2021-03-14 07:00 UTC: New York jumps
    0,
]).flatmap(lambda t: st.integers(t - 7200_000_000_000, t + 7200_000_000_000))
ZONES = st.sampled_from([
    "UTC", "Europe/Paris", "America/New_York", dt.timezone(dt.timedelta(hours=-3, minutes=-30)),
    zoneinfo.ZoneInfo("Asia/Kolkata"),
])
UNITS = st.sampled_from(["s", "ms", "us", "ns"])


def nullable(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), values)


def column(n: int) -> st.SearchStrategy[Any]:
    """A pandas column (array-like with its dtype) of ``n`` rows."""

    def of(values: st.SearchStrategy[Any], make: Callable[[list[Any]], Any]) -> Any:
        return st.lists(values, min_size=n, max_size=n).map(make)

    ints = st.integers(-(2**63), 2**63 - 1)
    return st.one_of(
        of(ints, lambda v: np.array(v, dtype="int64")),
        of(st.integers(-128, 127), lambda v: np.array(v, dtype="int8")),
        of(st.integers(0, 2**64 - 1), lambda v: np.array(v, dtype="uint64")),
        of(FLOATS, lambda v: np.array(v, dtype="float64")),
        of(st.floats(width=32), lambda v: np.array(v, dtype="float32")),
        of(st.floats(width=16), lambda v: np.array(v, dtype="float16")),
        of(st.booleans(), lambda v: np.array(v, dtype=bool)),
        of(st.complex_numbers(allow_nan=False), lambda v: np.array(v, dtype="complex128")),
        of(nullable(ints), lambda v: pd.array(v, dtype="Int64")),
        of(nullable(st.integers(0, 255)), lambda v: pd.array(v, dtype="UInt8")),
        of(nullable(st.floats(allow_nan=False)), lambda v: pd.array(v, dtype="Float64")),
        of(nullable(st.booleans()), lambda v: pd.array(v, dtype="boolean")),
        of(nullable(TEXT), lambda v: pd.array(v, dtype="str")),
        of(nullable(TEXT), lambda v: pd.array(v, dtype="string[python]")),
        of(nullable(TEXT), lambda v: pd.array(v, dtype="string[pyarrow]")),
        of(nullable(TEXT), lambda v: pd.Series(v, dtype=object)),
        of(nullable(st.binary(max_size=4)), lambda v: pd.Series(v, dtype=object)),
        st.tuples(of(nullable(DST_NS), list), UNITS).map(
            lambda a: pd.Series(pd.to_datetime(a[0], unit="ns")).dt.as_unit(a[1])
        ),
        st.tuples(of(nullable(DST_NS), list), UNITS, ZONES).map(
            lambda a: pd.Series(pd.to_datetime(a[0], unit="ns", utc=True))
            .dt.tz_convert(a[2]).dt.as_unit(a[1])
        ),
        st.tuples(of(nullable(st.integers(-(10**15), 10**15)), list), UNITS).map(
            lambda a: pd.Series(pd.to_timedelta(a[0], unit="ns")).dt.as_unit(a[1])
        ),
        st.tuples(of(nullable(st.sampled_from(["a", "b", "ç"])), list), st.booleans()).map(
            lambda a: pd.Categorical(a[0], categories=["b", "a", "ç", "z"], ordered=a[1])
        ),
        of(nullable(st.integers(0, 3)), pd.Categorical),
        of(st.integers(2000, 2030), lambda v: pd.PeriodIndex(
            [f"{y}-01" for y in v], freq="M").to_series().reset_index(drop=True)),
        of(st.integers(0, 9), lambda v: pd.arrays.IntervalArray.from_breaks(
            list(range(len(v) + 1)))),
        of(nullable(ints), lambda v: pd.array(v, dtype=pd.ArrowDtype(pa.int64()))),
        of(nullable(st.lists(ints, max_size=2)),
           lambda v: pd.array(v, dtype=pd.ArrowDtype(pa.list_(pa.int64())))),
        # Python objects.
        of(st.dictionaries(st.sampled_from("kl"), nullable(ints), max_size=2),
           lambda v: pd.Series(v, dtype=object)),
        of(nullable(st.lists(st.dictionaries(st.just("k"), ints), max_size=2)),
           lambda v: pd.Series(v, dtype=object)),
        of(st.lists(ints, max_size=3), lambda v: pd.Series(v, dtype=object)),
        of(st.tuples(ints, TEXT), lambda v: pd.Series(v, dtype=object)),
        of(st.frozensets(st.integers(0, 5)) | st.sets(st.integers(0, 5)),
           lambda v: pd.Series(v, dtype=object)),
        of(st.one_of(ints, TEXT, st.none(), FLOATS), lambda v: pd.Series(v, dtype=object)),
        of(nullable(ints), lambda v: pd.Series(v, dtype=object)),
        of(nullable(st.decimals(places=2, allow_nan=False, allow_infinity=False,
                                min_value=-(10**6), max_value=10**6)),
           lambda v: pd.Series(v, dtype=object)),
        of(nullable(st.dates()), lambda v: pd.Series(v, dtype=object)),
    )


def index(n: int) -> st.SearchStrategy[Any]:
    names = st.one_of(st.none(), TEXT, st.integers(0, 3))
    return st.one_of(
        st.none(),  # the default RangeIndex
        st.tuples(st.integers(-5, 5), st.integers(1, 3), names).map(
            lambda a: pd.RangeIndex(a[0], a[0] + n * a[1], a[1], name=a[2])),
        st.tuples(st.lists(st.integers(-3, 3), min_size=n, max_size=n), names).map(
            lambda a: pd.Index(a[0], name=a[1], dtype="int64")),
        st.tuples(st.lists(TEXT, min_size=n, max_size=n), names).map(
            lambda a: pd.Index(a[0], name=a[1])),
        st.tuples(st.lists(TEXT, min_size=n, max_size=n), names).map(
            lambda a: pd.Index(a[0], name=a[1], dtype=object)),
        st.tuples(ZONES, st.booleans()).map(
            lambda a: pd.date_range("2021-03-28", periods=n, freq="h", tz=a[0], name="at")
            if a[1] else pd.DatetimeIndex(
                pd.date_range("2021-03-28", periods=n, freq="h", tz=a[0]), freq=None)),
        st.lists(st.tuples(TEXT, st.integers(0, 2)), min_size=n, max_size=n).map(
            lambda t: pd.MultiIndex.from_tuples(t, names=["k", "i"]) if t else None),
    )


def labels(count: int) -> st.SearchStrategy[list[Any]]:
    distinct_text = st.lists(TEXT, min_size=count, max_size=count, unique=True)
    return st.one_of(
        distinct_text,
        st.lists(st.integers(-2, 5), min_size=count, max_size=count, unique=True),
        st.lists(st.one_of(TEXT, st.integers(0, 3)), min_size=count, max_size=count),
    )


ATTRS = st.one_of(
    st.just({}),
    st.just({"source": "orders.csv", "rows": 3, "tags": ["a"]}),
    st.just({"pair": (1, 2)}),
)


@st.composite
def pandas_frames(draw: st.DrawFn) -> Any:
    n = draw(ROWS)
    count = draw(st.integers(0, 3))
    data = [draw(column(n)) for _ in range(count)]
    names = draw(labels(count))
    df = pd.DataFrame(dict(enumerate(data)), index=range(n))
    # Hypothesis draws small integers most: 0 keeps the usual case the common one.
    df.columns = pd.Index(names, dtype=object if draw(st.integers(0, 3)) == 3 else None)
    idx = draw(index(n))
    if idx is not None:
        df.index = idx
    df.attrs.update(draw(ATTRS))
    unique = df.columns.is_unique and df.index.is_unique
    if unique and draw(st.integers(0, 9)) == 9:
        df = df.set_flags(allows_duplicate_labels=False)
    return df


@st.composite
def polars_frames(draw: st.DrawFn) -> Any:
    n = draw(ROWS)
    ints = st.integers(-(2**63), 2**63 - 1)
    kinds: list[tuple[Any, st.SearchStrategy[Any]]] = [
        (pl.Int64, ints),
        (pl.Int8, st.integers(-128, 127)),
        (pl.UInt64, st.integers(0, 2**64 - 1)),
        (pl.Float64, FLOATS),
        (pl.Float32, st.floats(width=32)),
        (pl.Boolean, st.booleans()),
        (pl.String, TEXT),
        (pl.Binary, st.binary(max_size=4)),
        (pl.Date, st.dates()),
        (pl.Time, st.times()),
        (pl.Datetime("ns"), st.datetimes(min_value=dt.datetime(1700, 1, 1),
                                         max_value=dt.datetime(2200, 1, 1))),
        (pl.Datetime("us", "Europe/Paris"), st.datetimes(
            min_value=dt.datetime(2021, 3, 27), max_value=dt.datetime(2021, 3, 29))),
        (pl.Duration("ms"), st.timedeltas(min_value=dt.timedelta(days=-999),
                                          max_value=dt.timedelta(days=999))),
        (pl.Decimal(12, 3), st.decimals(places=3, min_value=-(10**6), max_value=10**6)),
        (pl.Categorical, st.sampled_from(["a", "b", "ç"])),
        (pl.Enum(["lo", "hi"]), st.sampled_from(["lo", "hi"])),
        (pl.List(pl.Int64), st.lists(ints, max_size=3)),
        (pl.List(pl.Struct({"k": pl.Int64})), st.lists(st.fixed_dictionaries({"k": ints}),
                                                       max_size=2)),
        (pl.Struct({"a": pl.Int64, "b": pl.String}),
         st.fixed_dictionaries({"a": nullable(ints), "b": nullable(TEXT)})),
        (pl.Array(pl.Float64, 2), st.lists(FLOATS, min_size=2, max_size=2)),
        (pl.Null, st.none()),
    ]
    count = draw(st.integers(0, 3))
    names = draw(st.lists(TEXT, min_size=count, max_size=count, unique=True))
    columns = []
    for name in names:
        dtype, values = draw(st.sampled_from(kinds))
        columns.append(pl.Series(name, draw(st.lists(nullable(values), min_size=n, max_size=n)),
                                 dtype=dtype))
    return pl.DataFrame(columns)


def _arrow_kinds() -> list[tuple[Any, st.SearchStrategy[Any]]]:
    ints = st.integers(-(2**63), 2**63 - 1)
    day_ms = st.integers(-700_000, 700_000).map(lambda d: d * 86_400_000)  # years 53-3886
    kinds: list[tuple[Any, st.SearchStrategy[Any]]] = [
        (pa.int64(), ints),
        (pa.uint32(), st.integers(0, 2**32 - 1)),
        (pa.float64(), FLOATS),
        (pa.float16(), st.floats(width=16).map(np.float16)),
        (pa.bool_(), st.booleans()),
        (pa.string(), TEXT),
        (pa.large_string(), TEXT),
        (pa.binary(), st.binary(max_size=4)),
        (pa.binary(2), st.binary(min_size=2, max_size=2)),
        (pa.date32(), st.dates()),
        (pa.date64(), day_ms),
        (pa.time32("s"), st.integers(0, 86_399)),
        (pa.time32("ms"), st.integers(0, 86_399_999)),
        (pa.time64("ns"), st.integers(0, 86_399_999_999_999)),
        (pa.timestamp("s"), st.integers(-(10**10), 10**10)),
        (pa.timestamp("ns", "Europe/Paris"), DST_NS),
        (pa.timestamp("us", "+05:30"), st.integers(-(10**15), 10**15)),
        (pa.duration("s"), st.integers(-(10**9), 10**9)),
        (pa.decimal128(12, 3), st.decimals(places=3, min_value=-(10**6), max_value=10**6)),
        (pa.null(), st.none()),
        (pa.list_(pa.int64()), st.lists(ints, max_size=3)),
        (pa.large_list(pa.string()), st.lists(TEXT, max_size=3)),
        (pa.list_(pa.int8(), 2), st.lists(st.integers(-128, 127), min_size=2, max_size=2)),
        (pa.struct([("a", pa.int64()), ("b", pa.string())]),
         st.fixed_dictionaries({"a": nullable(ints), "b": nullable(TEXT)})),
        (pa.struct([]), st.just({})),
        (pa.map_(pa.string(), pa.int64()),
         st.lists(st.tuples(TEXT, ints), max_size=2)),
        (pa.dictionary(pa.int32(), pa.string()), st.sampled_from(["x", "y", "ç"])),
        (pa.dictionary(pa.int8(), pa.int64()), st.integers(0, 3)),
        (pa.month_day_nano_interval(), st.tuples(st.integers(0, 5), st.integers(0, 5),
                                                 st.integers(0, 5))),
    ]
    if hasattr(pa, "uuid"):
        kinds.append((pa.uuid(), st.binary(min_size=16, max_size=16)))
    return kinds


@st.composite
def arrow_tables(draw: st.DrawFn) -> Any:
    n = draw(ROWS)
    kinds = _arrow_kinds()
    count = draw(st.integers(0, 3))
    names = draw(st.lists(TEXT, min_size=count, max_size=count, unique=not draw(st.booleans())
                          or count < 2))
    fields, arrays = [], []
    for name in names:
        typ, values = draw(st.sampled_from(kinds))
        nullable_field = draw(st.booleans())
        vals = draw(st.lists(nullable(values) if nullable_field else values,
                             min_size=n, max_size=n))
        if pa.types.is_dictionary(typ):
            array = pa.array(vals, typ.value_type).dictionary_encode()
            array = array.cast(typ)
        elif isinstance(typ, pa.BaseExtensionType):
            array = pa.ExtensionArray.from_storage(typ, pa.array(vals, typ.storage_type))
        else:
            array = pa.array(vals, typ)
        meta = {"unit": "m"} if draw(st.booleans()) else None
        fields.append(pa.field(name, typ, nullable=nullable_field or typ == pa.null(),
                               metadata=meta))
        arrays.append(array)
    schema = pa.schema(fields, metadata={"origin": "test"} if draw(st.booleans()) else None)
    table = pa.Table.from_arrays(arrays, schema=schema)
    if n > 1 and draw(st.booleans()):
        table = pa.concat_tables([table.slice(0, 1), table.slice(1)])  # two chunks
    return table


# -- the properties ------------------------------------------------------------------------


@SETTINGS
@given(df=pandas_frames())
def test_pandas_frames_arrive_unchanged(stores: Any, df: Any) -> None:
    check_all(stores, df, same_pandas)


@SETTINGS
@given(df=polars_frames())
def test_polars_frames_arrive_unchanged(stores: Any, df: Any) -> None:
    check_all(stores, df, same_polars)


@SETTINGS
@given(table=arrow_tables())
def test_arrow_tables_arrive_unchanged(stores: Any, table: Any) -> None:
    check_all(stores, table, same_arrow)


def test_the_cases_of_the_issue_arrive_unchanged(stores: Any) -> None:
    # Fixed examples, so that these never depend on what Hypothesis happens to draw.
    frames = [
        pd.DataFrame({"d": [{"k": 1}, {"k": 2}, {}, {"k": 4}]}),
        pd.DataFrame({"d": [[{"k": 1}], [], [{"k": 2, "j": None}]]}),
        pd.DataFrame({"d": [{1, 2}, set(), {3}]}),
        pd.DataFrame({"d": [1, "a", None]}),
        pd.DataFrame({"d": [decimal.Decimal("1.10"), None]}),
    ]
    for df in frames:
        check_all(stores, df, same_pandas)
