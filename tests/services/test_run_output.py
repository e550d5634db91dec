"""Runs.output: a task run's stored result read back, for actors allowed results.read."""

from __future__ import annotations

from pathlib import Path

import pytest

from legato import pipeline, task
from legato.security.roles import Roles
from legato.services.actor import Actor
from legato.services.service_errors import Forbidden, NotFoundError
from legato.testing import Harness


@task
def rows() -> list[dict[str, int]]:
    return [{"id": 1}, {"id": 2}]


@task
def fails(values: list[dict[str, int]]) -> None:
    raise ValueError("no")


@pipeline
def outputs():
    fails(rows())


def test_an_output_is_read_back_by_whoever_may_read_results(tmp_path: Path) -> None:
    with Harness(tmp_path, pipelines=[outputs]) as harness:
        run = harness.run(outputs)
        runs = harness.door.runs
        assert runs.output(run.run_id, "rows") == [{"id": 1}, {"id": 2}]
        with pytest.raises(NotFoundError, match=r"task 'fails' of run .* has no result \(failed\)"):
            runs.output(run.run_id, "fails")
        with pytest.raises(NotFoundError, match="has no task 'nope'"):
            runs.output(run.run_id, "nope")
        # A viewer reads runs and logs, not the data the pipelines handle.
        viewer = Actor.http_client(
            "ann", permissions=Roles.parse().permissions("viewer"), role="viewer", auth="token"
        )
        as_viewer = harness.door.as_actor(viewer).runs
        assert as_viewer.find_run(run.run_id).id == run.run_id
        with pytest.raises(Forbidden, match=r"not allowed to results\.read"):
            as_viewer.output(run.run_id, "rows")
