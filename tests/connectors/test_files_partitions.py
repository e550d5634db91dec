"""A partitioned pipeline's tasks write files named by their partition, on s3:// and on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from legato.connectors import files
from legato.domain.states import RunState
from legato.services.workspace import Workspace
from tests.connectors.conftest import S3
from tests.helpers import door, make_project

CODE = """
import json
import os

from legato import pipeline, task
from legato.connectors import files
from legato.partitions import daily, multi, static


@task
def land(ctx):
    rows = [{"region": ctx.partition_keys["region"], "n": n} for n in range(3)]
    options = json.loads(os.environ["LAKE_OPTIONS"])
    files.write(rows, os.environ["LAKE"] + "/orders/{date}/{region}/part.parquet", ctx=ctx,
                storage_options=options)
    files.write(rows, os.environ["DROP"] + "/{window_start:%Y/%m/%d}/{partition}.csv", ctx=ctx)


@pipeline(partitions=multi(date=daily(start="2026-10-01", tz="Europe/Berlin"),
                           region=static(["eu", "us"])))
def regional():
    land()
"""


def test_each_partition_writes_where_its_keys_say(
    tmp_path: Path, s3: S3, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAKE", f"s3://{s3.bucket}")
    monkeypatch.setenv("LAKE_OPTIONS", json.dumps(s3.options))
    monkeypatch.setenv("DROP", str(tmp_path / "drop"))
    root = make_project(tmp_path / "p", CODE)
    with Workspace(root) as ws:
        for key in ("2026-11-20|eu", "2026-11-20|us"):
            assert door(ws).runs.run_pipeline("regional", partition=key).state == RunState.SUCCEEDED

    day = files.read(s3.url("orders/2026-11-20/*/part.parquet"), into="arrow",
                     storage_options=s3.options)  # fmt: skip
    assert day.column("region").to_pylist() == ["eu"] * 3 + ["us"] * 3
    on_disk = sorted(p.relative_to(tmp_path / "drop") for p in (tmp_path / "drop").rglob("*"))
    assert [str(p) for p in on_disk if p.suffix] == [
        "2026/11/20/2026-11-20|eu.csv",
        "2026/11/20/2026-11-20|us.csv",
    ]
