"""The result store: formats by type, round trips, fsspec roots, atomic writes, bad values."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
import uuid

import pytest

from legato.domain.refs import ResultRef
from legato.results import ResultError, ResultStore, serializers


def _files(root: str) -> list[str]:
    out = []
    for folder, _, names in os.walk(root):
        out += [os.path.relpath(os.path.join(folder, n), root) for n in names]
    return sorted(out)


@pytest.fixture
def store(tmp_path) -> ResultStore:
    return ResultStore(tmp_path / "results")


def test_pickle_round_trip_with_absolute_uri(store, tmp_path):
    value = {"rows": [1, 2, 3], "name": "x", "nested": (1.5, None)}
    ref = store.put("run1/task_a", value)
    assert ref.format == "pickle"
    assert ref.uri == str(tmp_path / "results" / "run1" / "task_a.pkl")
    assert os.path.isabs(ref.uri)
    assert store.get(ref) == value
    # Any other store (another process, another root) reads it from the absolute URI.
    assert ResultStore(tmp_path / "elsewhere").get(ref) == value


def test_none_writes_nothing(store, tmp_path):
    ref = store.put("run1/nothing", None)
    assert ref == ResultRef(None, "none")
    assert store.get(ref) is None
    assert not (tmp_path / "results").exists()


def test_pandas_frame_round_trip(store):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", None], "c": [0.5, 1.5, 2.5]})
    ref = store.put("run1/pandas", df)
    assert ref.format == "parquet-pandas"
    assert ref.uri.endswith(".parquet")
    pd.testing.assert_frame_equal(store.get(ref), df)


def test_pandas_frame_parquet_cannot_hold_falls_back_to_pickle(store):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({1: [1, 2], 2: [{"a": 1}, object]})  # int column names, objects
    ref = store.put("run1/odd", df)
    assert ref.format == "pickle"
    back = store.get(ref)
    assert list(back.columns) == [1, 2]
    assert back[2][0] == {"a": 1}


def test_polars_frame_round_trip(store):
    pl = pytest.importorskip("polars")
    df = pl.DataFrame({"a": [1, 2, 3], "b": ["x", None, "z"]})
    ref = store.put("run1/polars", df)
    assert ref.format == "parquet-polars"
    back = store.get(ref)
    assert isinstance(back, pl.DataFrame)
    assert back.equals(df)


def test_arrow_table_round_trip(store):
    pa = pytest.importorskip("pyarrow")
    table = pa.table({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    ref = store.put("run1/arrow", table)
    assert ref.format == "parquet-arrow"
    back = store.get(ref)
    assert isinstance(back, pa.Table)
    assert back.equals(table)


def test_format_choice_does_not_import_frame_libraries():
    code = (
        "import sys\n"
        "from legato.results import serializers\n"
        "assert serializers.format_of({'a': 1}) == 'pickle'\n"
        "assert serializers.format_of(None) == 'none'\n"
        "print(sorted(m for m in ('pandas', 'polars', 'pyarrow', 'fsspec') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_local_store_does_not_import_fsspec(tmp_path):
    code = (
        "import sys\n"
        "from legato.results import ResultStore\n"
        f"s = ResultStore({str(tmp_path)!r})\n"
        "assert s.get(s.put('r/x', [1, 2])) == [1, 2]\n"
        "print('fsspec' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_file_url_root_uses_local_paths(tmp_path):
    store = ResultStore(f"file://{tmp_path}/res")
    ref = store.put("r/x", 42)
    assert ref.uri == f"{tmp_path}/res/r/x.pkl"
    assert store.get(ref) == 42


def test_memory_fsspec_store():
    pytest.importorskip("fsspec")
    root = f"memory://legato-test-{uuid.uuid4().hex}"
    store = ResultStore(root)
    ref = store.put("run1/task", {"x": 1})
    assert ref.uri is not None and ref.uri.startswith("memory://")
    assert store.get(ref) == {"x": 1}
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": [1, 2]})
    fref = store.put("run1/frame", df)
    pd.testing.assert_frame_equal(store.get(fref), df)
    items = store.put_items("run1/task", ["a", "b"])
    assert [store.get(r) for r in items] == ["a", "b"]
    store.delete_run("run1")
    with pytest.raises(ResultError, match="missing"):
        store.get(ref)


def test_put_items_stores_each_element(store, tmp_path):
    refs = store.put_items("run1/m", [1, None, "three"])
    assert [r.format for r in refs] == ["pickle", "none", "pickle"]
    assert [store.get(r) for r in refs] == [1, None, "three"]
    assert refs[0].uri == str(tmp_path / "results" / "run1" / "m" / "items" / "0.pkl")


def test_unpicklable_value_raises_result_error_and_leaves_nothing(store, tmp_path):
    with pytest.raises(ResultError) as info:
        store.put("run1/bad", {"lock": threading.Lock()})
    assert str(info.value) == (
        "result 'run1/bad' cannot be stored: cannot pickle '_thread.lock' object"
    )
    assert info.value.reason == "cannot pickle '_thread.lock' object"
    assert _files(str(tmp_path / "results")) == []


def test_put_items_is_all_or_nothing(store, tmp_path):
    with pytest.raises(ResultError):
        store.put_items("run1/m", [1, 2, threading.Lock()])
    assert _files(str(tmp_path / "results")) == []


def test_half_pickled_value_leaves_no_file(store, tmp_path):
    class Boom:
        def __reduce__(self):
            raise RuntimeError("no way")

    big = [b"x" * 1_000_000 for _ in range(5)] + [Boom()]  # fails after writing megabytes
    with pytest.raises(ResultError, match="no way"):
        store.put("run1/big", big)
    assert _files(str(tmp_path / "results")) == []


def test_writes_are_atomic_and_leave_no_temp_files(store, tmp_path):
    ref = store.put("run1/x", list(range(1000)))
    ref2 = store.put("run1/x", "second")  # overwrite in place, e.g. a retry
    assert ref2.uri == ref.uri
    assert store.get(ref) == "second"
    threads = [
        threading.Thread(target=lambda i=i: store.put(f"run1/t{i % 3}", [i] * 1000))
        for i in range(30)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _files(str(tmp_path / "results")) == ["run1/t0.pkl", "run1/t1.pkl", "run1/t2.pkl",
                                                 "run1/x.pkl"]
    for i in range(3):
        value = store.get(ResultRef(str(tmp_path / "results" / "run1" / f"t{i}.pkl"), "pickle"))
        assert len(value) == 1000 and len(set(value)) == 1  # one whole write, never a mix


def test_missing_and_corrupt_results_raise_result_error(store, tmp_path):
    ref = store.put("run1/x", 1)
    with open(ref.uri, "wb") as f:
        f.write(b"not a pickle")
    with pytest.raises(ResultError, match="cannot be read"):
        store.get(ref)
    os.unlink(ref.uri)
    with pytest.raises(ResultError, match="missing"):
        store.get(ref)


def test_delete_and_delete_run(store, tmp_path):
    a = store.put("run1/a", 1)
    store.put("run2/b", 2)
    store.delete(a)
    store.delete(a)  # twice is fine
    store.delete_run("run2")
    assert _files(str(tmp_path / "results")) == []


def test_bad_keys_are_rejected(store):
    for key in ("", "/abs", "a/../b", "a//b"):
        with pytest.raises(ValueError):
            store.put(key, 1)


def test_store_is_picklable(store):
    other = pickle.loads(pickle.dumps(store))
    assert other.root == store.root
    assert other.get(store.put("r/x", 5)) == 5


def test_format_of_exact_types_only():
    pd = pytest.importorskip("pandas")

    class MyFrame(pd.DataFrame):
        pass

    assert serializers.format_of(pd.DataFrame()) == "parquet-pandas"
    assert serializers.format_of(MyFrame()) == "pickle"
    assert serializers.format_of(pd.Series([1])) == "pickle"


@pytest.mark.parametrize("root", ["local", "memory"])
def test_get_columns_reads_only_those_columns_of_parquet_and_others_whole(root, tmp_path):
    pd = pytest.importorskip("pandas")
    store = ResultStore(tmp_path / "r" if root == "local" else f"memory://{uuid.uuid4().hex}")
    df = pd.DataFrame({"id": [1, 2], "name": ["a", "b"], "notes": ["x", "y"]})
    ref = store.put("run/customers", df)
    assert ref.format == serializers.PANDAS
    part = store.get_columns(ref, ["id", "absent"])
    assert part.column_names == ["id"] and part.column("id").to_pylist() == [1, 2]
    rows = [{"id": 1}]
    assert store.get_columns(store.put("run/rows", rows), ["id"]) == rows
    with pytest.raises(ResultError, match="is missing"):
        store.get_columns(ResultRef(ref.uri + ".gone", ref.format), ["id"])


def test_parts_share_one_file_and_read_back_each(store, tmp_path):
    values = [1, "two", {"three": 3}, None, [4]]
    refs = store.put_parts("run1/sq[0].a1", [pickle.dumps(v, protocol=5) for v in values])
    assert _files(str(tmp_path / "results")) == ["run1/sq[0].a1.parts"]
    assert {r.format for r in refs} == {"pickle-part"}
    assert [store.get(r) for r in refs] == values
    assert store.get_many([refs[3], refs[0], store.put("run1/x", 9), refs[4]]) == [None, 1, 9, [4]]
    assert all(store.exists(r) for r in refs)
    store.delete(refs[0])  # the file holds the others: it stays
    assert store.get(refs[1]) == "two"
    store.delete_run("run1")
    assert not store.exists(refs[2])
    with pytest.raises(ResultError, match="missing"):
        store.get(refs[2])


def test_a_part_past_the_end_of_its_file_is_missing(store):
    refs = store.put_parts("run1/p", [pickle.dumps(1)])
    beyond = ResultRef(refs[0].uri.replace("#0", "#5"), "pickle-part")
    with pytest.raises(ResultError, match="missing"):
        store.get(beyond)


def test_parts_on_an_fsspec_root():
    store = ResultStore(f"memory://parts-{uuid.uuid4().hex}")
    refs = store.put_parts("run1/p", [pickle.dumps(v) for v in (5, 6)])
    assert refs[1].uri.startswith("memory://") and refs[1].uri.endswith("#1")
    assert store.get_many(refs) == [5, 6]
