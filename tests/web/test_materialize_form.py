"""The asset page's Materialize form: shown to whoever may launch runs, on an asset a task
produces, with the partition to choose for a partitioned one (those made so far offered), and
the pipeline when several produce it; a viewer and an asset made outside see none."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from legato.services.workspace import Workspace
from tests.helpers import door, make_project, signed_client

CODE = """
from legato import pipeline, task
from legato.partitions import static


@task(consumes="crm.customers", produces="shop.orders", in_process=True)
def orders(ctx):
    return [ctx.partition]


@pipeline(partitions=static(["eu", "us"]))
def ingest():
    orders()


@task(produces="shared.table", in_process=True)
def shared():
    return 1


@pipeline
def first():
    shared()


@pipeline
def second():
    shared()
"""


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    with Workspace(make_project(tmp_path / "proj", CODE)) as w:
        yield w


def _form(html: str) -> str | None:
    found = re.search(r'<form class="materialize".*?</form>', html, re.S)
    return found.group(0) if found else None


def test_an_operator_gets_the_form_and_a_viewer_does_not(ws: Workspace) -> None:
    door(ws).runs.run_pipeline("ingest", partition="us")
    operator = signed_client(ws, "operator")
    form = _form(operator.get("/assets/shop.orders").text)
    assert form is not None
    assert 'data-post="/api/v1/assets/shop.orders/materialize"' in form
    assert 'data-then="run"' in form
    assert re.search(r'<input name="partition"[^>]*required value="us"', form)
    assert '<option value="us">' in form and "<select" not in form

    several = _form(operator.get("/assets/shared.table").text)
    assert several is not None and "partition" not in several
    assert re.findall(r'<option value="(\w+)">', several) == ["first", "second"]

    assert _form(operator.get("/assets/crm.customers").text) is None  # made outside
    viewer = signed_client(ws, "viewer")
    assert _form(viewer.get("/assets/shop.orders").text) is None


def test_with_params_opens_the_launcher_as_a_materialize_form(ws: Workspace) -> None:
    operator = signed_client(ws, "operator")
    form = _form(operator.get("/assets/shared.table").text)
    assert form is not None
    links = re.findall(r'<a class="with-params" href="([^"]*)">([^<]*)</a>', form)
    assert links == [
        ("/pipelines/first/launch?materialize=shared.table", "with params (first)…"),
        ("/pipelines/second/launch?materialize=shared.table", "with params (second)…"),
    ]
    page = operator.get(links[1][0])
    assert page.status_code == 200, page.text
    assert "<h1>Materialize shared.table with second</h1>" in page.text
    assert 'data-pipeline="second" data-materialize="shared.table"' in page.text
    assert '<button type="submit" class="primary">Materialize</button>' in page.text
    assert operator.get("/pipelines/first/launch?materialize=no.such").status_code == 404
