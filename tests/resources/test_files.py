"""The ``files`` kind on a local folder (relative ones in the project's folder), memory:// and
s3:// against an S3-compatible server: tasks read and write under the root, the root's URL
serves libraries that want one, and check lists the root."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from legato.resources.files import FilesResource
from legato.resources.kind import ResourceError, kind_class
from legato.resources.rooted import RootedFileSystem


def files(settings: dict[str, Any]) -> FilesResource:
    resource = kind_class("files")("drop", {"kind": "files", **settings})
    assert isinstance(resource, FilesResource)
    return resource


@pytest.mark.parametrize("url", ["data/drop", "file://data/drop", "local://data/drop"])
def test_a_relative_local_folder_lies_in_the_project_and_is_made(tmp_path: Path, url: str) -> None:
    project = tmp_path / "project"
    resource = files({"url": url, "root": str(project)})
    fs = resource.open()
    folder = project / "data" / "drop"
    assert folder.is_dir()
    assert fs.url == f"file://{folder}"
    assert resource.check(fs) == f"listed file://{folder}: 0 entries"
    with fs.open("2026-11-20/orders.csv", "w") as out:  # folders are made as files are written
        out.write("id,amount\n1,9.5\n")
    assert (folder / "2026-11-20" / "orders.csv").read_text() == "id,amount\n1,9.5\n"
    assert fs.ls("", detail=False) == ["2026-11-20"]
    assert resource.check(fs).endswith(": 1 entries")
    frame = pd.read_csv(fs.url_of("2026-11-20/orders.csv"), storage_options=fs.options)
    assert frame.to_dict("records") == [{"id": 1, "amount": 9.5}]


def test_check_fails_when_the_local_folder_is_gone(tmp_path: Path) -> None:
    resource = files({"url": str(tmp_path / "drop")})
    fs = resource.open()
    (tmp_path / "drop").rmdir()
    with pytest.raises(ResourceError, match=f"file://{tmp_path}/drop does not exist"):
        resource.check(fs)


def test_an_absolute_folder_stays_where_it_is(tmp_path: Path) -> None:
    fs = files({"url": str(tmp_path / "abs"), "root": str(tmp_path / "project")}).open()
    fs.pipe("x.txt", b"x")
    assert (tmp_path / "abs" / "x.txt").read_bytes() == b"x"
    # Picklable: the same root comes back (what Dask or a process pool would send).
    again = pickle.loads(pickle.dumps(fs))
    assert isinstance(again, RootedFileSystem)
    assert again.cat("x.txt") == b"x"


def test_memory_root(tmp_path: Path) -> None:
    resource = files({"url": f"memory://{tmp_path.name}/orders"})
    fs = resource.open()
    try:
        assert resource.check(fs).endswith(": 0 entries")
        fs.pipe("a/part-0.json", b'{"id": 1}\n')
        assert fs.cat("a/part-0.json") == b'{"id": 1}\n'
        assert fs.fs.cat(f"/{tmp_path.name}/orders/a/part-0.json") == b'{"id": 1}\n'
    finally:
        fs.fs.rm(f"/{tmp_path.name}", recursive=True)


def test_s3_prefix_with_storage_options(s3_bucket: tuple[str, dict[str, Any]]) -> None:
    bucket, options = s3_bucket
    resource = files({"url": f"s3://{bucket}/orders", "options": options})
    fs = resource.open()
    assert fs.url == f"s3://{bucket}/orders"
    assert (
        resource.check(fs) == f"s3://{bucket}/orders: nothing there yet (bucket {bucket!r} answers)"
    )
    fs.pipe("2026-11-20/part-0.csv", b"id\n1\n2\n")
    assert fs.fs.cat(f"{bucket}/orders/2026-11-20/part-0.csv") == b"id\n1\n2\n"
    assert resource.check(fs) == f"listed s3://{bucket}/orders: 1 entries"
    frame = pd.read_csv(fs.url_of("2026-11-20/part-0.csv"), storage_options=fs.options)
    assert frame["id"].tolist() == [1, 2]


def test_s3_bucket_that_does_not_exist_fails_check(s3_bucket: tuple[str, dict[str, Any]]) -> None:
    _, options = s3_bucket
    resource = files({"url": "s3://no-such-bucket-here/orders", "options": options})
    with pytest.raises(ResourceError, match="s3://no-such-bucket-here/orders does not exist"):
        resource.check(resource.open())


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "'url' is required"),
        ({"url": ""}, "'url' is empty"),
        ({"url": "x", "options": "key=1"}, "'options' must be a dict"),
        ({"url": "x", "endpoint_url": "y"}, "unknown setting 'endpoint_url'"),
    ],
)
def test_wrong_settings_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ResourceError, match=message):
        files(settings)


def test_an_unknown_protocol_is_named_when_opened() -> None:
    with pytest.raises(ResourceError, match=r"resource 'drop' \(files\): cannot open nosuch://x"):
        files({"url": "nosuch://x"}).open()
