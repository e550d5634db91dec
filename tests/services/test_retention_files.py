"""Separate windows for logs and results: ``[retention] logs`` and ``results`` remove the
files of finished runs while the runs stay (the newest run and failed runs keep theirs);
readers then say "pruned", and a re-run from such a run runs the tasks whose results are gone
again. Once per backend, and through the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from legato.clock import ManualClock
from legato.config import ConfigError, load_config
from legato.domain.ids import run_folder
from legato.domain.records import NotFound
from legato.domain.states import RunState, TaskState
from legato.services.retention_service import Policy
from legato.services.service_errors import NotFoundError, ServiceError
from legato.services.workspace import Workspace
from tests.conftest import BACKENDS
from tests.helpers import cli, door, make_project

CODE = """
from legato import pipeline, task


@task
def extract() -> list[int]:
    print("extracting")
    return [1, 2, 3]


@task
def transform(rows: list[int]) -> list[int]:
    return [r * 10 for r in rows]


@task
def load(rows: list[int], fail: bool) -> int:
    if fail:
        raise ValueError("bad load")
    return sum(rows)


@pipeline
def chain(fail: bool = False):
    load(transform(extract()), fail)
"""
T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = 24 * 3600.0
WINDOWS = Policy.of(timedelta(days=30), logs=timedelta(days=5), results=timedelta(days=7))


@pytest.fixture(params=BACKENDS)
def made(
    request: pytest.FixtureRequest, tmp_path: Path, store_url_for: Callable[[str], str]
) -> Iterator[tuple[Workspace, dict[str, str]]]:
    """On day 0 a success ("old") and a failure; on day 10 the newest success; now day 11."""
    extra = f'\n[store]\nurl = "{store_url_for(request.param)}"\n'
    clock = ManualClock(T0)
    ws = Workspace(make_project(tmp_path / "proj", CODE, extra=extra), clock=clock)
    runs = door(ws).runs
    ids = {"old": runs.run_pipeline("chain", {}).id}
    clock.advance(60)
    ids["failed"] = runs.run_pipeline("chain", {"fail": True}).id
    clock.advance(10 * DAY)
    ids["newest"] = runs.run_pipeline("chain", {}).id
    clock.advance(DAY)
    yield ws, ids
    ws.close()


def _has_files(ws: Workspace, run_id: str) -> tuple[bool, bool]:
    logs = Path(ws.config.logs_dir) / run_folder(run_id)
    results = Path(ws.config.results_url) / run_folder(run_id)
    return logs.is_dir(), results.is_dir()


def test_old_logs_and_results_go_and_the_runs_stay(made) -> None:
    ws, ids = made
    assert _has_files(ws, ids["old"]) == (True, True)
    dry = door(ws).retention.prune(WINDOWS, dry_run=True)
    assert (dry.logs_pruned, dry.results_pruned) == (1, 1)
    assert _has_files(ws, ids["old"]) == (True, True)

    report = door(ws).retention.prune(WINDOWS)
    assert report.removed.runs == 0  # nothing is 30 days old
    assert (report.logs_pruned, report.results_pruned) == (1, 1)
    assert _has_files(ws, ids["old"]) == (False, False)
    # The newest run and the failed one keep theirs.
    assert _has_files(ws, ids["newest"]) == (True, True)
    assert _has_files(ws, ids["failed"])[0]
    runs = door(ws).runs
    assert runs.find_run(ids["old"]).state == RunState.SUCCEEDED
    assert runs.pruned(ids["old"]) == {"logs", "results"}
    assert runs.pruned(ids["newest"]) == frozenset()
    # Done once: the next pass finds nothing more.
    again = door(ws).retention.prune(WINDOWS)
    assert (again.logs_pruned, again.results_pruned) == (0, 0)


def test_logs_may_go_before_results(made) -> None:
    ws, ids = made
    policy = Policy.of(timedelta(days=30), logs=timedelta(days=5), results=timedelta(days=20))
    report = door(ws).retention.prune(policy)
    assert (report.logs_pruned, report.results_pruned) == (1, 0)
    assert _has_files(ws, ids["old"]) == (False, True)
    assert door(ws).runs.pruned(ids["old"]) == {"logs"}
    assert door(ws).runs.output(ids["old"], "load") == 60


def test_readers_say_pruned_instead_of_a_missing_file(made) -> None:
    ws, ids = made
    runs = door(ws).runs
    assert runs.output(ids["old"], "load") == 60
    assert runs.logs(ids["old"], "extract")[0].note is None
    door(ws).retention.prune(WINDOWS)
    with pytest.raises(NotFoundError, match="results pruned"):
        runs.output(ids["old"], "load")
    entry = runs.logs(ids["old"], "extract")[0]
    assert entry.note is not None and "logs pruned" in entry.note
    assert runs.output(ids["newest"], "load") == 60


def test_a_rerun_runs_again_the_tasks_whose_results_are_gone(made) -> None:
    ws, ids = made
    runs = door(ws).runs
    # Before: a re-run of load reuses extract and transform.
    before = runs.rerun(ids["newest"], task="load")
    rows = {r.task_key: r for r in ws.store.runs.get_task_runs(before.id)}
    assert rows["extract"].reused_from == ids["newest"]
    door(ws).retention.prune(WINDOWS)
    rerun = runs.rerun(ids["old"], task="load")
    rows = {r.task_key: r for r in ws.store.runs.get_task_runs(rerun.id)}
    assert {k: r.state for k, r in rows.items()} == {
        "extract": TaskState.PENDING,
        "transform": TaskState.PENDING,
        "load": TaskState.PENDING,
    }
    notes = [e.message for e in ws.store.runs.get_events(rerun.id, kind="origin")]
    assert notes == [
        f"results of run {ids['old']} pruned by retention: extract, transform run again"
    ]
    done = runs.execute(rerun.id)
    assert done.state == RunState.SUCCEEDED
    assert runs.output(rerun.id, "load") == 60


def test_a_rerun_reusing_results_of_a_pruned_run_runs_them_again(made) -> None:
    ws, ids = made
    runs = door(ws).runs
    # The newest run's re-run reuses its extract and transform: their files are the
    # newest run's. Once the newest run is not the newest any more and its results go,
    # a re-run from the re-run cannot reuse them.
    first = runs.execute(runs.rerun(ids["newest"], task="load").id)
    ws.clock.advance(20 * DAY)  # type: ignore[attr-defined]
    runs.run_pipeline("chain", {})
    door(ws).retention.prune(WINDOWS)
    assert runs.pruned(ids["newest"]) == {"logs", "results"}
    again = runs.rerun(first.id, task="load")
    rows = {r.task_key: r for r in ws.store.runs.get_task_runs(again.id)}
    assert rows["extract"].state == TaskState.PENDING and rows["extract"].reused_from is None


def test_results_a_kept_rerun_reuses_stay_until_it_lets_them_go(made) -> None:
    ws, ids = made
    runs = door(ws).runs
    # The re-run (day 11) reuses the newest run's extract and transform: their files stay in
    # the newest run's folder, which is past its results window on day 19.
    first = runs.execute(runs.rerun(ids["newest"], task="load").id)
    assert runs.output(first.id, "transform") == [10, 20, 30]
    ws.clock.advance(8 * DAY)  # type: ignore[attr-defined]
    report = door(ws).retention.prune(WINDOWS)
    assert report.results_pruned == 1  # the old run's; not the newest run's
    assert runs.pruned(ids["newest"]) == {"logs"}
    assert runs.output(first.id, "transform") == [10, 20, 30]
    # Past the runs window too, the newest run stays while the re-run reads its results.
    ws.clock.advance(25 * DAY)  # type: ignore[attr-defined]
    door(ws).retention.prune(WINDOWS)
    assert runs.find_run(ids["newest"]).state == RunState.SUCCEEDED
    assert runs.output(first.id, "transform") == [10, 20, 30]
    # Once the re-run is not the newest any more, both go (the re-run first).
    runs.run_pipeline("chain", {})
    report = door(ws).retention.prune(WINDOWS)
    assert report.removed.runs == 2
    for gone in (first.id, ids["newest"]):
        with pytest.raises(NotFound):
            runs.find_run(gone)


def test_a_window_longer_than_the_runs_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ServiceError, match="at most as long as runs"):
        Policy.of(timedelta(days=3), logs=timedelta(days=4))
    root = make_project(tmp_path / "p", CODE, extra='\n[retention]\nruns = "7d"\nlogs = "8d"\n')
    with pytest.raises(ConfigError, match=r"\[retention\] logs must be no longer"):
        load_config(root)
    alone = make_project(tmp_path / "q", CODE, extra='\n[retention]\nresults = "1d"\n')
    with pytest.raises(ConfigError, match=r"\[retention\] results must be no longer"):
        load_config(alone)
    fine = make_project(tmp_path / "r", CODE, extra='\n[retention]\nruns = "7d"\nlogs = "2d"\n')
    cfg = load_config(fine)
    assert (cfg.keep_logs, cfg.keep_results) == (2 * DAY, None)


def test_the_cli_prunes_by_the_projects_windows_and_shows_what_went(tmp_path: Path) -> None:
    extra = '\n[retention]\nruns = "30d"\nlogs = "1d"\nresults = "2d"\n'
    root = make_project(tmp_path / "p", CODE, extra=extra)
    clock = ManualClock(datetime.now(UTC) - timedelta(days=3))
    with Workspace(root, clock=clock) as ws:
        old = door(ws).runs.run_pipeline("chain", {}).id
        clock.advance(60)  # the other run is the newest: it keeps its files
        door(ws).runs.run_pipeline("chain", {})
    dry = cli("db", "prune", "--dry-run", "--json", project=root)
    assert dry.returncode == 0, dry.stderr
    said = json.loads(dry.stdout)
    assert (said["runs"], said["logs_of_runs"], said["results_of_runs"]) == (0, 1, 1)
    done = cli("db", "prune", project=root)
    assert done.returncode == 0, done.stderr
    assert "removed the logs of 1 runs older than 1 day" in done.stdout
    assert "removed the results of 1 runs older than 2 days" in done.stdout
    shown = cli("show", old, project=root)
    assert shown.returncode == 0, shown.stderr
    assert "results pruned" in shown.stdout and "logs pruned" in shown.stdout
    as_json = json.loads(cli("show", old, "--json", project=root).stdout)
    assert as_json["pruned"] == ["logs", "results"]
    rerun = cli("rerun", old, "--task", "load", project=root)
    assert rerun.returncode == 0, rerun.stderr
    assert "pruned by retention: extract, transform run again" in rerun.stdout
