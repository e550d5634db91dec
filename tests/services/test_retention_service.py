"""Retention removes exactly what the policy says: old finished runs with their task runs,
attempts, events, logs and results, in batches; never an unfinished run, the newest run of a
pipeline or of a partition, or a failed run within its longer window. Once per backend, and
through `legato db prune`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from legato.clock import ManualClock
from legato.domain.ids import run_folder
from legato.domain.states import RunState
from legato.services.retention_service import Policy
from legato.services.service_errors import ServiceError
from legato.services.workspace import Workspace
from tests.conftest import BACKENDS
from tests.helpers import cli, door, make_project

CODE = """
from legato import pipeline, task
from legato.partitions import static


@task
def load(fail: bool) -> int:
    print("loading")
    if fail:
        raise ValueError("bad load")
    return 1


@pipeline
def plain(fail: bool = False):
    load(fail)


@pipeline(partitions=static(["eu", "us"]))
def regions():
    load(False)
"""
T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = 24 * 3600.0


@pytest.fixture(params=BACKENDS)
def made(
    request: pytest.FixtureRequest, tmp_path: Path, store_url_for: Callable[[str], str]
) -> Iterator[tuple[Workspace, ManualClock, dict[str, list[str]]]]:
    """Runs made on day 0 and day 35 (see below); the clock then at day 40."""
    extra = f'\n[store]\nurl = "{store_url_for(request.param)}"\n'
    clock = ManualClock(T0)
    ws = Workspace(make_project(tmp_path / "proj", CODE, extra=extra), clock=clock)
    runs = door(ws).runs
    made: dict[str, list[str]] = {"old": [], "kept": []}
    # Day 0: three plain successes, a plain failure, two runs of each region.
    for _ in range(3):
        made["old"].append(runs.run_pipeline("plain", {}).id)
        clock.advance(60)
    made["failed"] = [runs.run_pipeline("plain", {"fail": True}).id]
    for key in ("eu", "us", "eu", "us"):
        clock.advance(60)
        made["old" if len(made["old"]) < 5 else "kept"].append(
            runs.run_pipeline("regions", {}, partition=key).id
        )
    # Day 35: the newest plain run.
    clock.advance(35 * DAY)
    made["kept"].append(runs.run_pipeline("plain", {}).id)
    clock.advance(5 * DAY)
    yield ws, clock, made
    ws.close()


def _exists(ws: Workspace, run_id: str) -> bool:
    return any(r.id == run_id for r in ws.store.browse.list_runs(limit=None))


def test_prune_removes_old_runs_and_keeps_the_newest_and_the_failed(made) -> None:
    ws, _, ids = made
    # The runs of day 0: the first two of the regions are old (each region ran again later),
    # the last two are each region's newest and stay.
    old, kept, failed = ids["old"], ids["kept"], ids["failed"]
    assert len(old) == 5 and len(kept) == 3
    logs = Path(ws.config.logs_dir)
    assert all((logs / run_folder(i)).is_dir() for i in old)
    task_runs_before = len(ws.store.runs.get_task_runs(old[0]))
    report = door(ws).retention.prune(Policy.of(timedelta(days=30)))
    assert report.removed.runs == 5
    assert report.removed.task_runs == 5 * task_runs_before
    assert report.removed.attempts == 5 and report.removed.events > 0
    assert report.by_pipeline == {"plain": 3, "regions": 2}
    assert not any(_exists(ws, i) for i in old)
    assert all(_exists(ws, i) for i in kept + failed)  # newest of each; failed: 90 days
    assert not any((logs / run_folder(i)).exists() for i in old)
    assert all((logs / run_folder(i)).is_dir() for i in kept + failed)
    results = Path(ws.config.results_url)
    assert not any((results / run_folder(i)).exists() for i in old)
    assert (results / run_folder(kept[-1])).is_dir()
    # Nothing is left for it to do; a failed run goes once past its own window.
    assert door(ws).retention.prune(Policy.of(timedelta(days=30))).removed.runs == 0
    report = door(ws).retention.prune(Policy.of(timedelta(days=30), timedelta(days=31)))
    assert report.removed.runs == 1 and not _exists(ws, failed[0])


def test_a_dry_run_says_what_would_go_and_removes_nothing(made) -> None:
    ws, _, _ = made
    before = len(ws.store.browse.list_runs(limit=None))
    report = door(ws).retention.prune(Policy.of(timedelta(days=30)), dry_run=True)
    assert report.dry_run and report.removed.runs == 5 and report.removed.attempts == 5
    assert len(ws.store.browse.list_runs(limit=None)) == before
    assert report.folders == 0


def test_an_unfinished_run_is_never_pruned(made) -> None:
    ws, clock, ids = made
    queued = door(ws).runs.create_run("plain")
    clock.advance(400 * DAY)
    door(ws).retention.prune(Policy.of(timedelta(days=1), timedelta(days=1)))
    got = ws.store.runs.get_run(queued.id)
    assert got.state == RunState.QUEUED
    # The queued run is plain's newest now: of the finished runs only each region's newest
    # are left.
    left = {r.id for r in ws.store.browse.list_runs(limit=None)}
    assert left == {queued.id, *ids["kept"][:2]}


def test_prune_without_a_policy_says_how_to_give_one(made) -> None:
    ws, _, _ = made
    with pytest.raises(ServiceError, match=r"\[retention\] runs"):
        door(ws).retention.prune()
    with pytest.raises(ServiceError, match="less time"):
        Policy.of(timedelta(days=30), timedelta(days=1))


def test_legato_db_prune_applies_the_projects_policy(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", CODE, extra='\n[retention]\nruns = "30d"\n')
    clock = ManualClock(datetime.now(UTC) - timedelta(days=60))
    ws = Workspace(root, clock=clock)
    try:
        for _ in range(4):
            door(ws).runs.run_pipeline("plain", {})
    finally:
        ws.close()
    dry = cli("db", "prune", "--dry-run", "--json", project=root)
    assert dry.returncode == 0, dry.stderr
    said = json.loads(dry.stdout)
    assert (said["dry_run"], said["runs"], said["attempts"]) == (True, 3, 3)
    done = cli("db", "prune", project=root)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("removed 3 runs (made ")
    assert "1 log and result folders" not in done.stdout and "  plain: 3" in done.stdout
    again = cli("db", "prune", "--older-than", "90d", project=root)
    assert again.stdout.startswith("nothing to prune")
