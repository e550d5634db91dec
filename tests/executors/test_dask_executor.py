"""The Dask executor on real clusters: a LocalCluster it owns, and an external
``dask scheduler`` + ``dask worker`` started as processes. No mocks.

One LocalCluster-backed workspace serves most tests (module-scoped): starting a cluster
costs about a second.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from legato.config import ConfigError, load_config
from legato.domain.ids import run_folder
from legato.domain.records import TaskRunRecord
from legato.domain.refs import ResultRef
from legato.domain.states import RunState
from legato.results.result_store import ResultStore
from legato.services.workspace import Workspace
from tests.helpers import cli, door, free_port, make_project, process_alive, wait_for

pytest.importorskip("distributed", reason='needs the dask extra: pip install "legato[dask]"')
from legato.executors.dask import DaskExecutor

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")

DASK = str(Path(sys.executable).parent / "dask")

FLOWS = """
import os, time
from pathlib import Path
from legato import Context, pipeline, task

HERE = Path(__file__).parent


@task(produces="dask.numbers")
def numbers(ctx: Context, n: int) -> list[int]:
    print(f"numbers: making {n}")
    ctx.log.info("numbers: context log line")
    ctx.add_metadata(n=n)
    return list(range(n))


@task
def square(x: int) -> int:
    print(f"square of {x}")
    return x * x


@task
def total(xs: list[int], offset: int) -> int:
    print("total of", xs)
    return sum(xs) + offset


@task(in_process=True)
def describe(t: int) -> str:
    print("describing", t)
    return f"total={t}"


@pipeline
def flow(n: int = 4):
    describe(total(square.map(numbers(n)), 100))


@task(retries=1)
def victim(ctx: Context) -> int:
    if ctx.attempt == 1:
        (HERE / "victim.pid").write_text(str(os.getpid()))
        print("first attempt, waiting to be killed", flush=True)
        time.sleep(60)
    print("second attempt")
    return ctx.attempt


@pipeline
def crash():
    victim()


# The timeout counts from the driver's submit, so it covers the trip through the cluster's
# scheduler too, which on a busy machine (a worker being replaced) can take a second or more.
@task(retries=1, timeout=5)
def sleepy(ctx: Context) -> str:
    (HERE / f"sleepy.{ctx.attempt}.pid").write_text(str(os.getpid()))
    print(f"attempt {ctx.attempt} starts", flush=True)
    if ctx.attempt == 1:
        time.sleep(120)
    return "woke"


@pipeline
def slow():
    sleepy()


@task
def ticker() -> str:
    # Waits for the test to have seen its first line in the log *while it runs*.
    print("tick 0", flush=True)
    deadline = time.monotonic() + 10
    while not (HERE / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    for i in range(1, 4):
        print(f"tick {i}", flush=True)
    return "seen" if (HERE / "go").exists() else "not streamed"


@pipeline
def live():
    ticker()
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(
        tmp_path_factory.mktemp("dask") / "proj", FLOWS, workers=2, extra='kind = "dask"\n'
    )


@pytest.fixture(scope="module")
def ws(project: Path) -> Iterator[Workspace]:
    workspace = Workspace(project)
    ex = workspace.executor()
    assert isinstance(ex, DaskExecutor)
    cluster_pids = _worker_pids(ex)
    yield workspace
    cluster_pids |= _worker_pids(ex)
    workspace.close()
    # The LocalCluster's workers (and the replacements of killed ones) are gone.
    wait_for(lambda: not any(process_alive(p) for p in cluster_pids), 15, "workers to exit")


def _worker_pids(ex: DaskExecutor) -> set[int]:
    return set(ex.client.run(os.getpid).values())


def _result(ws: Workspace, row: TaskRunRecord) -> object:
    assert row.result_format is not None
    return ResultStore(ws.config.results_url).get(ResultRef(row.result_uri, row.result_format))


def _attempts(ws: Workspace, run_id: str, key: str) -> list[tuple[int, str]]:
    return [(a.number, a.outcome) for a in door(ws).runs.attempts(run_id, key)]


def test_pipeline_runs_on_the_cluster_with_values_and_logs(ws: Workspace, project: Path) -> None:
    run = door(ws).runs.run_pipeline("flow", {"n": 4})
    assert run.state == RunState.SUCCEEDED, run.error
    rows = {t.task_key: t for t in door(ws).runs.task_runs(run.id)}
    assert set(rows) >= {"numbers", "square[0]", "square[3]", "total", "describe"}
    assert all(t.state.value == "succeeded" for t in rows.values())
    described = door(ws).runs.attempts(run.id, "describe")[0]
    assert described.worker == "thread"  # in_process: a thread of the driver
    on_dask = door(ws).runs.attempts(run.id, "total")[0]
    assert on_dask.worker is not None and on_dask.worker.startswith("tcp://")
    # The value came through the result store: 0+1+4+9 + 100.
    assert _result(ws, rows["describe"]) == "total=114"
    # The metadata of an asset made on a Dask worker came back with the outcome.
    (made,) = [m for m in door(ws).assets.materializations("dask.numbers") if m.run_id == run.id]
    assert made.task_key == "numbers" and made.metadata["rows"] == 4
    assert made.metadata["values"] == {"n": 4}

    logs = cli("logs", run.id, project=project)
    assert logs.returncode == 0, logs.stderr
    text = logs.stdout
    for line in ("numbers: making 4", "numbers: context log line", "square of 3",
                 "total of [0, 1, 4, 9]", "describing 114"):
        assert text.count(line) == 1, (line, text)


def test_worker_killed_mid_task_crashes_the_attempt_and_the_retry_succeeds(
    ws: Workspace, project: Path
) -> None:
    pid_file = project / "victim.pid"
    pid_file.unlink(missing_ok=True)
    killed: list[int] = []
    created: list[str] = []

    def killer() -> None:
        wait_for(pid_file.exists, 30, "the first attempt to start")
        # Once its output has reached the driver (streamed: the attempt is still running).
        log = Path(ws.config.logs_dir) / run_folder(created[0]) / "victim.1.log"
        wait_for(lambda: log.exists() and "waiting to be killed" in log.read_text(), 10,
                 "the first line in the log")
        pid = int(pid_file.read_text())
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    t = threading.Thread(target=killer, daemon=True)
    t.start()
    run = door(ws).runs.run_pipeline("crash", on_created=lambda r: created.append(r.id))
    t.join(5)
    assert killed and killed[0] != os.getpid()
    assert run.state == RunState.SUCCEEDED, run.error
    first, second = door(ws).runs.attempts(run.id, "victim")
    assert (first.number, first.outcome, second.number, second.outcome) == (
        1, "crashed", 2, "succeeded"
    )
    assert first.error is not None and "Dask worker running the attempt died" in first.error
    assert "KilledWorker" in first.error
    log1 = Path(door(ws).runs.logs(run.id, "victim")[0].path).read_text()
    assert log1.count("first attempt, waiting to be killed") == 1
    assert "legato: the Dask worker running the attempt died" in log1
    assert "second attempt" in Path(door(ws).runs.logs(run.id, "victim")[1].path).read_text()


def test_timeout_kills_the_attempt_and_the_retry_policy_applies(
    ws: Workspace, project: Path
) -> None:
    for n in (1, 2):
        (project / f"sleepy.{n}.pid").unlink(missing_ok=True)
    started = time.monotonic()
    run = door(ws).runs.run_pipeline("slow")
    assert run.state == RunState.SUCCEEDED, [
        (a.number, a.outcome, a.error, a.worker) for a in door(ws).runs.attempts(run.id, "sleepy")
    ]
    assert time.monotonic() - started < 100  # not the 120 s the first attempt sleeps
    assert _attempts(ws, run.id, "sleepy") == [(1, "timeout"), (2, "succeeded")]
    first = door(ws).runs.attempts(run.id, "sleepy")[0]
    assert first.error == "timed out after 5s"
    # The attempt was stopped for real: its worker process is gone (a new one replaced it).
    pid = int((project / "sleepy.1.pid").read_text())
    wait_for(lambda: not process_alive(pid), 10, "the timed-out worker to die")
    log1 = Path(door(ws).runs.logs(run.id, "sleepy")[0].path).read_text()
    assert "attempt 1 starts" in log1 and "legato: attempt timeout: timed out after 5s" in log1
    # The cluster is whole again.
    ex = ws.executor()
    assert isinstance(ex, DaskExecutor)
    wait_for(lambda: len(ex.client.nthreads()) == 2, 15, "the worker to be replaced")
    # Every worker, the replacement too, imported the project when it started, so no
    # attempt's timeout pays for the import.
    loaded = ex.client.run(
        lambda: sorted(__import__("legato.executors.dask_worker", fromlist=["x"])._projects)
    )
    assert list(loaded.values()) == [[str(project.resolve())]] * 2, loaded


def test_log_grows_while_the_attempt_runs_and_no_line_is_written_twice(
    ws: Workspace, project: Path
) -> None:
    go = project / "go"
    go.unlink(missing_ok=True)
    created: list[str] = []

    def watcher() -> None:
        wait_for(lambda: bool(created), 30, "the run to be created")
        log = Path(ws.config.logs_dir) / run_folder(created[0]) / "ticker.1.log"
        wait_for(lambda: log.exists() and "tick 0" in log.read_text(), 10, "a streamed line")
        go.touch()

    t = threading.Thread(target=watcher, daemon=True)
    t.start()
    run = door(ws).runs.run_pipeline("live", on_created=lambda r: created.append(r.id))
    t.join(5)
    assert run.state == RunState.SUCCEEDED, run.error
    row = {r.task_key: r for r in door(ws).runs.task_runs(run.id)}["ticker"]
    assert _result(ws, row) == "seen"
    text = Path(door(ws).runs.logs(run.id, "ticker")[0].path).read_text()
    assert text.splitlines() == ["tick 0", "tick 1", "tick 2", "tick 3"]


def test_wait_returns_at_once_when_idle_and_promptly_after_wake(ws: Workspace) -> None:
    ex = ws.executor()
    # A worker an earlier test killed may still be coming back (slots are re-read each 1 s).
    wait_for(lambda: ex.free_slots() == 2, 15, "both workers")
    t0 = time.monotonic()
    assert ex.wait(None) == []
    ex.wake()
    assert ex.wait(10) == []
    threading.Timer(0.2, ex.wake).start()
    assert ex.wait(10) == []
    assert time.monotonic() - t0 < 3


def test_local_cluster_does_not_let_dask_rerun_failed_workers(ws: Workspace) -> None:
    ex = ws.executor()
    assert isinstance(ex, DaskExecutor)
    assert ex.client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.allowed_failures) == 0
    assert ex.client.nthreads() and set(ex.client.nthreads().values()) == {1}


VERSIONED = """
import time
from legato import pipeline, task

VALUE = "{value}"


@task
def two() -> list[int]:
    return [0, 1]


@task
def which(i: int) -> str:
    time.sleep(0.3)  # long enough for the two elements to land on the two workers
    print("running code", VALUE)
    return VALUE


@pipeline
def versioned():
    which.map(two())
"""


def test_workers_reload_the_project_when_the_driver_has_another_code_version(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ex = ws.executor()
    assert isinstance(ex, DaskExecutor)
    project = make_project(  # another module name: the workers hold the module's `flows`
        tmp_path / "v", VERSIONED.format(value="one"), module="versioned",
        extra=f'kind = "dask"\naddress = "{ex.scheduler_address}"\n',
    )

    def outputs(w: Workspace) -> tuple[list[object], set[str | None], str]:
        run = door(w).runs.run_pipeline("versioned")
        assert run.state == RunState.SUCCEEDED, run.error
        rows = [r for r in door(w).runs.task_runs(run.id) if r.map_index is not None]
        workers = {door(w).runs.attempts(run.id, r.task_key)[0].worker for r in rows}
        logs = "".join(e.text() for e in door(w).runs.logs(run.id))
        return [_result(w, r) for r in rows], workers, logs

    with Workspace(project) as old:
        values, workers, _ = outputs(old)
        assert values == ["one", "one"] and len(workers) == 2  # both workers loaded "one"
        (project / "versioned.py").write_text(VERSIONED.format(value="three"))
        with Workspace(project) as new:  # a driver started after the change: another version
            values, _, logs = outputs(new)
        assert values == ["three", "three"], logs
        assert "differs from the driver's" not in logs
        # A driver whose code differs from the workers' disk (as on another machine, not
        # deployed yet): its version is on no worker any more, so they run what they have,
        # and the log says so. (A driver here would load the edited code first.)
        monkeypatch.setattr(old, "refresh", lambda: None)
        values, _, logs = outputs(old)
        assert values == ["three", "three"]
        assert logs.count("differs from the driver's") == 3, logs  # `two` and each `which`


# -- an external cluster ---------------------------------------------------------------


@pytest.fixture
def external_cluster(tmp_path: Path) -> Iterator[str]:
    """``dask scheduler`` and one ``dask worker --nthreads 1`` as processes; their address."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with open(tmp_path / "scheduler.log", "wb") as out:
            procs.append(subprocess.Popen(
                [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                 "--no-dashboard", "--no-show"],
                stdout=out, stderr=subprocess.STDOUT, env=env,
            ))
        with open(tmp_path / "worker.log", "wb") as out:
            procs.append(subprocess.Popen(
                [DASK, "worker", address, "--nthreads", "1", "--nworkers", "1",
                 "--no-dashboard", "--host", "127.0.0.1"],
                stdout=out, stderr=subprocess.STDOUT, env=env,
            ))
        from distributed import Client

        with Client(address, timeout=20, set_as_default=False) as client:
            client.wait_for_workers(1, timeout=30)
        yield address
    finally:
        for p in reversed(procs):  # the worker first, so it does not try to reconnect
            p.terminate()
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)


def test_external_cluster_runs_the_pipeline(tmp_path: Path, external_cluster: str) -> None:
    project = make_project(
        tmp_path / "ext", FLOWS, extra=f'kind = "dask"\naddress = "{external_cluster}"\n'
    )
    ran = cli("run", "flow", "--param", "n=3", "-q", project=project)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    runs = json.loads(cli("runs", "--json", project=project).stdout)
    assert runs[0]["state"] == "succeeded"
    with Workspace(project) as w:
        attempt = door(w).runs.attempts(runs[0]["id"], "total")[0]
        assert attempt.worker is not None and attempt.worker.startswith("tcp://127.0.0.1:")
        assert attempt.worker != external_cluster  # a worker's address, not the scheduler's
        text = "".join(e.text() for e in door(w).runs.logs(runs[0]["id"]))
    assert "total of [0, 1, 4]" in text and "numbers: context log line" in text


def test_external_scheduler_that_reruns_tasks_is_warned_about(
    tmp_path: Path, external_cluster: str, caplog: pytest.LogCaptureFixture
) -> None:
    project = make_project(tmp_path / "warn", FLOWS)
    config = load_config(project)

    def set_failures(value: int) -> None:
        from distributed import Client

        with Client(external_cluster, set_as_default=False) as c:
            c.run_on_scheduler(lambda dask_scheduler: setattr(
                dask_scheduler, "allowed_failures", value))

    for value, warned in ((0, False), (3, True)):
        set_failures(value)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="legato.executors.dask"), DaskExecutor(
            external_cluster, results=config.results_url, project_root=project
        ) as ex:
            ex.start({})
            assert ex.free_slots() == 1
        said = "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=0" in caplog.text
        assert said is warned, caplog.text


def test_unreachable_scheduler_is_a_one_line_error(tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "down", FLOWS,
        extra=f'kind = "dask"\naddress = "tcp://127.0.0.1:{free_port()}"\n',
    )
    quick = {"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"}  # not the default 30 s
    ran = cli("run", "flow", project=project, env=quick)
    assert ran.returncode == 2, ran.stdout + ran.stderr
    assert "cannot connect to the Dask scheduler at tcp://127.0.0.1:" in ran.stderr
    assert "Traceback" not in ran.stderr


# -- configuration -----------------------------------------------------------------------


def test_config_kind_address_and_env_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LEGATO_EXECUTOR", raising=False)
    monkeypatch.delenv("LEGATO_DASK_ADDRESS", raising=False)
    plain = make_project(tmp_path / "plain", FLOWS)
    config = load_config(plain)
    assert (config.executor, config.dask_address) == ("local", None)
    dask_proj = make_project(
        tmp_path / "d", FLOWS, extra='kind = "dask"\naddress = "tcp://sched:8786"\n'
    )
    config = load_config(dask_proj)
    assert (config.executor, config.dask_address) == ("dask", "tcp://sched:8786")

    monkeypatch.setenv("LEGATO_EXECUTOR", "dask")
    monkeypatch.setenv("LEGATO_DASK_ADDRESS", "tcp://other:9999")
    config = load_config(plain)
    assert (config.executor, config.dask_address) == ("dask", "tcp://other:9999")
    monkeypatch.setenv("LEGATO_EXECUTOR", "local")
    assert load_config(dask_proj).executor == "local"

    monkeypatch.setenv("LEGATO_EXECUTOR", "ray")
    with pytest.raises(ConfigError, match=r"LEGATO_EXECUTOR 'ray' is not available \(known: "
                                          r"local, dask\)"):
        load_config(plain)
    monkeypatch.delenv("LEGATO_EXECUTOR")
    monkeypatch.delenv("LEGATO_DASK_ADDRESS")
    bad = make_project(tmp_path / "bad", FLOWS, extra='kind = "celery"\n')
    with pytest.raises(ConfigError, match=r"\[executor\] kind 'celery' is not available "
                                          r"\(known: local, dask\)"):
        load_config(bad)
    wrong_type = make_project(tmp_path / "wt", FLOWS, extra="address = 8786\n")
    with pytest.raises(ConfigError, match=r"\[executor\] address must be a str"):
        load_config(wrong_type)


def test_unknown_kind_is_a_one_line_cli_error(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", FLOWS, extra='kind = "celery"\n')
    ran = cli("run", "flow", project=project)
    assert ran.returncode == 2
    assert "kind 'celery' is not available (known: local, dask)" in ran.stderr
    assert len(ran.stderr.strip().splitlines()) == 1


def test_missing_distributed_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", FLOWS, extra='kind = "dask"\n')
    # As if distributed were not installed: importing it fails.
    monkeypatch.setitem(sys.modules, "distributed", None)
    monkeypatch.delitem(sys.modules, "legato.executors.dask")
    with Workspace(project) as w, pytest.raises(ConfigError, match=r'pip install "legato\[dask\]"'):
        w.executor()
