"""Files connectors: CSV, JSON lines and Parquet round trips on local paths, memory:// and
s3:// (moto's S3 server), to and from pandas, polars and pyarrow; globs; atomic writes."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import fsspec
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from fsspec.implementations.dirfs import DirFileSystem

from legato.connectors import files
from legato.connectors.targets import atomic_open
from tests.connectors.conftest import S3

ROWS = [{"id": i, "name": f"n{i}", "amount": i * 1.5} for i in range(25)]


def frame(kind: str) -> Any:
    if kind == "pandas":
        return pd.DataFrame(ROWS)
    if kind == "polars":
        return pl.DataFrame(ROWS)
    if kind == "arrow":
        return pa.Table.from_pylist(ROWS)
    return list(ROWS)


def as_rows(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, pd.DataFrame):
        return list(value.to_dict("records"))
    if isinstance(value, pl.DataFrame):
        return value.to_dicts()
    assert isinstance(value, pa.Table)
    return value.to_pylist()


TYPES = {"pandas": pd.DataFrame, "polars": pl.DataFrame, "arrow": pa.Table}


@pytest.mark.parametrize("suffix", ["csv", "jsonl", "parquet", "csv.gz", "ndjson.gz"])
@pytest.mark.parametrize("kind", ["pandas", "polars", "arrow", "dicts"])
def test_local_round_trip_of_each_format_and_frame(tmp_path: Path, suffix: str, kind: str) -> None:
    path = str(tmp_path / "out" / f"orders.{suffix}")
    written = files.write(frame(kind), path)
    assert (written.path, written.rows) == (path, 25)
    into = "pandas" if kind == "dicts" else kind
    back = files.read(path, into=into)  # type: ignore[arg-type]
    assert isinstance(back, TYPES[into])
    assert as_rows(back) == ROWS
    assert [p.name for p in (tmp_path / "out").iterdir()] == [f"orders.{suffix}"]


@pytest.mark.parametrize("suffix", ["csv", "jsonl", "parquet"])
def test_memory_round_trip(suffix: str) -> None:
    url = f"memory://{uuid.uuid4().hex}/orders.{suffix}"
    files.write(frame("polars"), url)
    assert as_rows(files.read(url, into="arrow")) == ROWS
    fsspec.filesystem("memory").rm(url, recursive=True)


@pytest.mark.parametrize("suffix", ["csv", "jsonl.gz", "parquet"])
def test_s3_round_trip_against_an_s3_server(s3: S3, suffix: str) -> None:
    url = s3.url(f"orders/2026-11-20/part.{suffix}")
    files.write(frame("pandas"), url, storage_options=s3.options)
    assert as_rows(files.read(url, storage_options=s3.options)) == ROWS
    import s3fs

    listed = s3fs.S3FileSystem(**s3.options).find(s3.bucket)
    assert listed == [f"{s3.bucket}/orders/2026-11-20/part.{suffix}"]  # no temporary left


def test_a_glob_reads_every_matching_file_in_name_order_as_one_table(s3: S3) -> None:
    for day in ("2026-11-21", "2026-11-20", "2026-11-22"):
        rows = [{"day": day, "n": n} for n in range(3)]
        files.write(rows, s3.url(f"orders/{day}/part.parquet"), storage_options=s3.options)
    # Neither a file named as a marker or scratch ("_...") nor one being written is read.
    files.write([{"day": "x", "n": 9}], s3.url("orders/2026-11-20/_scratch.parquet"),
                storage_options=s3.options)  # fmt: skip
    files.write([{"day": "y", "n": 9}], s3.url("orders/2026-11-23/.part.parquet"),
                storage_options=s3.options)  # fmt: skip
    table = files.read(s3.url("orders/*/*.parquet"), into="polars", storage_options=s3.options)
    assert table["day"].to_list() == ["2026-11-20"] * 3 + ["2026-11-21"] * 3 + ["2026-11-22"] * 3
    with pytest.raises(FileNotFoundError, match="no file matches"):
        files.read(s3.url("nothing/*.csv"), storage_options=s3.options)


def test_a_glob_unifies_the_columns_of_its_files(tmp_path: Path) -> None:
    files.write([{"id": 1}], str(tmp_path / "a.jsonl"))
    files.write([{"id": 2, "note": "new"}], str(tmp_path / "b.jsonl"))
    got = files.read(str(tmp_path / "*.jsonl"), into="arrow")
    assert got.to_pylist() == [{"id": 1, "note": None}, {"id": 2, "note": "new"}]


@pytest.mark.parametrize("where", ["local", "memory", "s3"])
def test_a_failed_write_leaves_the_old_file_and_no_trace(
    where: str, tmp_path: Path, s3: S3
) -> None:
    fs: Any
    if where == "local":
        fs, path = fsspec.filesystem("file"), f"{tmp_path}/d/orders.csv"
    elif where == "memory":
        fs, path = fsspec.filesystem("memory"), f"/{uuid.uuid4().hex}/orders.csv"
    else:
        import s3fs

        fs, path = s3fs.S3FileSystem(**s3.options), f"{s3.bucket}/d/orders.csv"
    with atomic_open(fs, path) as fh:
        fh.write(b"id\n1\n")
    with pytest.raises(RuntimeError, match="half-way"), atomic_open(fs, path) as fh:
        fh.write(b"id\n2\n")
        fh.flush()
        raise RuntimeError("half-way")
    assert fs.cat_file(path) == b"id\n1\n"
    assert fs.ls(path.rsplit("/", 1)[0], detail=False) == [fs._strip_protocol(path)]


def test_a_files_resource_filesystem_takes_paths_inside_it(tmp_path: Path) -> None:
    root = DirFileSystem(str(tmp_path / "lake"), fsspec.filesystem("file"))
    written = files.write(frame("arrow"), "orders/{partition}.parquet", filesystem=root,
                          fields={"partition": "2026-11-20"})  # fmt: skip
    assert written.path == "orders/2026-11-20.parquet"
    assert (tmp_path / "lake" / "orders" / "2026-11-20.parquet").is_file()
    assert as_rows(files.read("orders/*.parquet", filesystem=root, into="arrow")) == ROWS


def test_paths_say_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no value for \{partition\} \(values: none"):
        files.write(ROWS, str(tmp_path / "{partition}.csv"))
    with pytest.raises(ValueError, match=r"format of .*orders\.txt.*pass format="):
        files.write(ROWS, str(tmp_path / "orders.txt"))
    written = files.write(ROWS, str(tmp_path / "orders.txt"), format="csv")
    assert files.read(written.path, format="csv", into="arrow").num_rows == 25
