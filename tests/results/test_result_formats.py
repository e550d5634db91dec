"""Which format a frame gets, why it falls back, and what asking for a format does."""

from __future__ import annotations

import decimal
import os

import pytest

from legato import DefinitionError, task
from legato.results import ResultError, ResultStore

pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")
pl = pytest.importorskip("polars")


def _files(root) -> list[str]:
    return [name for _, _, names in os.walk(root) for name in names]


@pytest.fixture
def store(tmp_path) -> ResultStore:
    return ResultStore(tmp_path / "results")


def test_a_column_of_dicts_is_pickled_and_the_ref_says_why(store):
    df = pd.DataFrame({"d": [{"k": 1}, {"k": 2}, {}, {"k": 4}]})
    ref = store.put("r/dicts", df)
    assert (ref.format, ref.note) == (
        "pickle", "Parquet would change it: column 'd' holds dict values"
    )
    back = store.get(ref)
    pd.testing.assert_frame_equal(back, df, check_exact=True)
    assert back["d"][2] == {}


@pytest.mark.parametrize(
    ("df", "note"),
    [
        (pd.DataFrame({"s": [{1}, {2}]}), "column 's' holds set values"),
        (pd.DataFrame({"l": [[{"k": 1}], []]}), "column 'l' holds list values"),
        (pd.DataFrame({"m": [1, "a"]}), "column 'm' holds int, str values"),
        (pd.DataFrame([[1, 2]], columns=["a", "a"]), "duplicate column names 'a'"),
        (pd.DataFrame({"a": [1, 2]}, index=pd.date_range("2024-01-01", periods=2)),
         "the index has a frequency (D), which Parquet does not keep"),
        (pd.DataFrame({"o": pd.Series([1, 2], dtype=object)}),
         "column 'o': object comes back as int64"),
    ],
)
def test_pandas_frames_parquet_would_change_are_pickled(store, df, note):
    ref = store.put("r/x", df)
    assert ref.format == "pickle"
    assert ref.note == f"Parquet would change it: {note}"
    pd.testing.assert_frame_equal(store.get(ref), df, check_exact=True)


def test_frames_parquet_keeps_stay_parquet_without_a_note(store):
    plain = pd.DataFrame({"n": [1, 2], "s": ["x", None], "t": pd.date_range(
        "2024-03-31", periods=2, freq="h", tz="Europe/Paris")})
    ref = store.put("r/plain", plain)
    assert (ref.format, ref.note) == ("parquet-pandas", None)
    # Decimals are Python objects: written, read back and compared before being kept.
    decimals = pd.DataFrame({"d": [decimal.Decimal("1.25"), None]})
    ref = store.put("r/dec", decimals)
    assert (ref.format, ref.note) == ("parquet-pandas", None)
    pd.testing.assert_frame_equal(store.get(ref), decimals, check_exact=True)
    assert sorted(os.listdir(os.path.dirname(ref.uri))) == ["dec.parquet", "plain.parquet"]


def test_arrow_types_parquet_would_change_go_to_arrow_ipc(store):
    table = pa.table({"day": pa.array([0, 86_400_000], pa.date64()), "xs": [[1], [2, 3]]})
    ref = store.put("r/t", table)
    assert ref.format == "ipc-arrow" and ref.uri.endswith(".arrow")
    assert ref.note == (
        "Parquet would change it: column 'day' (date64[ms]): date64 comes back as date32"
    )
    assert store.get(ref).equals(table, check_metadata=True)
    plain = pa.table({"a": [1, 2]}).replace_schema_metadata({"k": "v"})
    assert store.put("r/plain", plain).format == "parquet-arrow"


def test_polars_frames_parquet_cannot_write_go_to_arrow_ipc(store, monkeypatch):
    df = pl.DataFrame({"xs": [[1], None], "s": [{"a": 1}, None]})
    assert store.put("r/p", df).format == "parquet-polars"
    monkeypatch.setattr(pl.DataFrame, "write_parquet", lambda *a, **k: 1 / 0)
    ref = store.put("r/p2", df)
    assert (ref.format, ref.note) == ("ipc-polars", "Parquet cannot hold it: division by zero")
    assert store.get(ref).equals(df)


def test_polars_object_columns_cannot_be_stored(store, tmp_path):
    df = pl.DataFrame({"o": pl.Series([{1}], dtype=pl.Object)})
    with pytest.raises(ResultError, match="Object"):
        store.put("r/o", df)
    assert _files(tmp_path / "results") == []


def test_asking_for_a_format_that_would_change_the_frame_fails(store, tmp_path):
    df = pd.DataFrame({"d": [{"k": 1}, {}]})
    with pytest.raises(ResultError) as info:
        store.put("r/x", df, "parquet")
    assert info.value.reason == (
        "result_format='parquet' would change it: column 'd' holds dict values"
    )
    with pytest.raises(ResultError, match="result_format='arrow-ipc' would change it"):
        store.put("r/x", df, "arrow-ipc")
    with pytest.raises(ResultError, match="result_format='parquet' would change it: column 'a'"):
        store.put("r/t", pa.table({"a": pa.array([1], pa.timestamp("s"))}), "parquet")
    with pytest.raises(ResultError) as info:
        store.put("r/y", {"a": 1}, "parquet")
    assert info.value.reason == (
        "result_format='parquet' holds pandas, polars or Arrow frames, not dict"
    )
    assert _files(tmp_path / "results") == []


def test_asking_for_a_format_that_holds_the_frame_uses_it(store):
    df = pd.DataFrame({"a": [1, 2]}, index=pd.Index(["x", "y"], name="k"))
    assert store.put("r/p", df, "pickle").format == "pickle"
    ref = store.put("r/i", df, "arrow-ipc")
    assert ref.format == "ipc-pandas"
    pd.testing.assert_frame_equal(store.get(ref), df, check_exact=True)
    assert store.put("r/pl", pl.DataFrame({"a": [1]}), "arrow-ipc").format == "ipc-polars"
    assert store.put("r/pa", pa.table({"a": [1]}), "arrow-ipc").format == "ipc-arrow"
    assert store.put("r/n", None, "parquet").format == "none"


def test_result_format_is_checked_when_the_task_is_defined():
    @task(result_format="arrow-ipc")
    def fine() -> None:
        return None

    assert fine.result_format == "arrow-ipc"
    with pytest.raises(DefinitionError, match="result_format must be one of 'auto', 'parquet'"):

        @task(result_format="feather")
        def wrong() -> None:
            return None
