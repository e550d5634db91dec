"""FileSource over local directories and fsspec's in-memory filesystem."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest

from legato.scheduler.sources import FileEntry, FileSource, SourceError


def write(path: Path, data: bytes, mtime: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Arrived csv files at three depths, plus files and folders that must not be listed."""
    root = tmp_path / "landing"
    write(root / "a" / "b" / "deep.csv", b"123", 1_700_000_300)
    write(root / "top.csv", b"1", 1_700_000_100)
    write(root / "a" / "mid.csv", b"12", 1_700_000_200)
    write(root / "a" / "same-time.csv", b"", 1_700_000_200)
    write(root / "a" / ".hidden.csv", b"x", 1_700_000_000)
    write(root / "a" / "b" / "writing.csv.tmp", b"x", 1_700_000_000)
    write(root / "a" / "b" / "upload.csv.part", b"x", 1_700_000_000)
    write(root / "notes.txt", b"x", 1_700_000_000)
    (root / "folder.csv").mkdir()
    return root


def test_local_glob_with_double_star_lists_arrived_files_oldest_first(tree: Path):
    entries = FileSource(str(tree / "**" / "*.csv")).list()

    assert entries == [
        FileEntry(str(tree / "top.csv"), 1, 1_700_000_100.0),
        FileEntry(str(tree / "a" / "mid.csv"), 2, 1_700_000_200.0),
        FileEntry(str(tree / "a" / "same-time.csv"), 0, 1_700_000_200.0),
        FileEntry(str(tree / "a" / "b" / "deep.csv"), 3, 1_700_000_300.0),
    ]


def test_relative_local_paths_are_made_absolute(tree: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tree / "a")
    source = FileSource("../**/*.csv")
    # Resolved once, at construction: a later chdir does not move the sensor.
    monkeypatch.chdir(tree.parent)
    paths = [entry.path for entry in source.list()]
    assert paths[0] == str(tree / "top.csv")
    assert all(os.path.isabs(path) and ".." not in path for path in paths)


def test_new_since_leaves_out_seen_paths(tree: Path):
    source = FileSource(str(tree / "**" / "*.csv"))
    seen = {entry.path for entry in source.list()}
    assert source.new_since(seen) == []

    arrived = write(tree / "a" / "b" / "new.csv", b"new!", 1_700_000_400)
    assert source.new_since(seen) == [FileEntry(str(arrived), 4, 1_700_000_400.0)]
    assert [e.path for e in source.new_since(set())][-1] == str(arrived)


def test_a_missing_folder_lists_nothing(tmp_path: Path):
    assert FileSource(str(tmp_path / "nowhere" / "*.csv")).list() == []


@pytest.fixture
def memory_root() -> Iterator[tuple[Any, str]]:
    fs = fsspec.filesystem("memory")
    root = f"/legato-test-{uuid.uuid4().hex}"
    yield fs, root
    if fs.exists(root):
        fs.rm(root, recursive=True)


def test_memory_filesystem(memory_root: tuple[Any, str]):
    fs, root = memory_root
    fs.pipe(f"{root}/in/one.json", b"1")
    fs.pipe(f"{root}/in/day=1/two.json", b"22")
    fs.pipe(f"{root}/in/day=1/three.json.part", b"333")
    fs.pipe(f"{root}/in/.four.json", b"4444")
    source = FileSource(f"memory://{root}/in/**/*.json")

    entries = source.list()

    assert [(e.path, e.size) for e in entries] == [
        (f"memory://{root}/in/one.json", 1),
        (f"memory://{root}/in/day=1/two.json", 2),
    ]
    assert all(e.modified is not None for e in entries)
    seen = {e.path for e in entries}
    fs.pipe(f"{root}/in/five.json", b"55555")
    assert [e.path for e in source.new_since(seen)] == [f"memory://{root}/in/five.json"]


def test_unknown_protocol_is_a_source_error():
    with pytest.raises(SourceError, match="nosuchproto://bucket"):
        FileSource("nosuchproto://bucket/*.csv")
