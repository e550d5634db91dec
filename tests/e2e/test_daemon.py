"""`legato up` as a user runs it: a real daemon process on a throwaway project.

Each test starts the daemon as a subprocess (stopped with SIGTERM, then SIGKILL, afterwards)
and checks what a user notices: runs in the store and `legato runs --json`, HTTP status codes
of the webhook endpoint, and marker files the tasks write.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.helpers import (
    LEGATO,
    Daemons,
    cli,
    free_port,
    make_project,
    marks,
    process_alive,
    wait_for,
)

if TYPE_CHECKING:
    from legato.domain.records import RunRecord
    from legato.store.store import Store

# -- fixtures and small helpers -------------------------------------------------------------


def all_runs(store: Store, pipeline: str | None = None) -> list[RunRecord]:
    """Every run (of ``pipeline``), oldest first."""
    return sorted(store.browse.list_runs(pipeline=pipeline, limit=None), key=lambda r: r.id)


def wait_runs(
    store: Store,
    count: int,
    *,
    pipeline: str | None = None,
    state: str = "succeeded",
    timeout: float = 15.0,
) -> list[RunRecord]:
    """Wait until at least ``count`` runs (of ``pipeline``) are in ``state``; all runs then."""

    def enough() -> bool:
        return sum(1 for r in all_runs(store, pipeline) if r.state.value == state) >= count

    try:
        wait_for(enough, timeout=timeout, what=f"{count} {state} runs of {pipeline or 'any'}")
    except AssertionError:
        found = [(r.pipeline, r.state.value, r.partition, r.error) for r in all_runs(store)]
        raise AssertionError(f"{count} {state} runs expected; the store has {found}") from None
    return all_runs(store, pipeline)


def started_pid(pid_file: Path) -> int:
    """The pid a task writes to ``pid_file`` as it starts (its content, not only the file)."""
    wait_for(
        lambda: pid_file.exists() and bool(pid_file.read_text().strip()),
        timeout=15,
        what="task start",
    )
    return int(pid_file.read_text())


def submit(project: Path, pipeline: str, *args: str) -> str:
    """`legato submit`; the new run's id."""
    done = cli("submit", pipeline, *args, project=project)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.split("queued run ", 1)[1].split()[0]


def submit_parallel(project: Path, *calls: tuple[str, ...]) -> None:
    """Several `legato submit` at once (their order in the queue is not defined)."""
    procs = [
        subprocess.Popen(
            [LEGATO, "submit", *call, "--project", str(project)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for call in calls
    ]
    for p in procs:
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0, out


def runs_json(project: Path, *args: str) -> list[dict[str, Any]]:
    done = cli("runs", "--json", "--limit", "1000", *args, project=project)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def intervals(path: Path) -> list[tuple[float, float, str]]:
    """(start, end, label) lines written by the timing tasks, by start time."""
    out = []
    for line in marks(path):
        label, start, end = line.split(",")
        out.append((float(start), float(end), label))
    return sorted(out)


def assert_no_overlap(spans: list[tuple[float, float, str]]) -> None:
    for (_, end, label), (start, _, nxt) in pairwise(spans):
        assert start >= end, f"{nxt} started at {start:.3f} before {label} ended at {end:.3f}"


MARK = """
import os, time
from pathlib import Path

HERE = Path(__file__).parent

def mark(line, name="marks.txt"):
    with open(HERE / name, "a") as fh:
        fh.write(line + "\\n")
"""

# -- the webhook endpoint ---------------------------------------------------------------------

HOOK_CODE = (
    MARK
    + """
from legato import pipeline, task
from legato.triggers import webhook

@task
def work(n: int) -> int:
    mark(f"work{n}")
    return n

@pipeline(triggers=[webhook()])
def hooked(n: int = 0):
    work(n)

@pipeline
def plain():
    work(0)
"""
)


def token_of(project: Path, pipeline: str, trigger: str) -> str:
    """A new token for the webhook, made as an admin does (`legato triggers token`)."""
    done = cli("triggers", "token", pipeline, trigger, project=project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "shown once" in done.stderr
    listed = cli("triggers", "--json", project=project)
    found = [
        t for t in json.loads(listed.stdout) if t["pipeline"] == pipeline and t["name"] == trigger
    ]
    assert len(found) == 1 and found[0]["has_token"] is True, listed.stdout
    assert done.stdout.strip() not in listed.stdout  # the token is never shown again
    return done.stdout.strip()


def test_webhook_makes_one_run_per_authorised_call(
    tmp_path: Path, daemons: Daemons, store_of: Callable[[Path], Store]
) -> None:
    project = make_project(tmp_path / "proj", HOOK_CODE)
    port = free_port()
    daemon = daemons.up(project, port=port)
    daemon.wait_output("webhooks at")
    assert f"http://127.0.0.1:{port}/api/v1/hooks/" in daemon.output()
    token = token_of(project, "hooked", "webhook")
    store = store_of(project)
    url = f"http://127.0.0.1:{port}/api/v1/hooks/hooked/webhook"
    auth = {"Authorization": f"Bearer {token}"}

    with httpx.Client(timeout=10) as http:
        made = http.post(url, json={"n": 7}, headers=auth)
        assert made.status_code == 201, made.text
        body = made.json()
        assert body["created"] is True
        first = body["run_id"]
        runs = wait_runs(store, 1)
        assert [r.id for r in runs] == [first]
        assert runs[0].params == {"n": 7} and runs[0].origin == "trigger:webhook"
        assert marks(project / "marks.txt") == ["work7"]

        refused = {
            "wrong token": http.post(url, json={"n": 1}, headers={"Authorization": "Bearer no"}),
            "no token": http.post(url, json={"n": 1}),
            "malformed JSON": http.post(url, content=b'{"n": ', headers=auth),
            "a JSON list": http.post(url, content=b"[1, 2]", headers=auth),
            "a JSON number": http.post(url, content=b"3", headers=auth),
            "wrong param type": http.post(url, json={"n": "seven"}, headers=auth),
            "unknown param": http.post(url, json={"zzz": 1}, headers=auth),
            "unknown pipeline": http.post(
                f"http://127.0.0.1:{port}/api/v1/hooks/nope/webhook", json={}, headers=auth
            ),
            "pipeline without webhook": http.post(
                f"http://127.0.0.1:{port}/api/v1/hooks/plain/webhook", json={}, headers=auth
            ),
            "unknown trigger": http.post(
                f"http://127.0.0.1:{port}/api/v1/hooks/hooked/other", json={}, headers=auth
            ),
        }
        statuses = {what: r.status_code for what, r in refused.items()}
        assert statuses == {
            "wrong token": 401,
            "no token": 401,
            "malformed JSON": 400,
            "a JSON list": 400,
            "a JSON number": 400,
            "wrong param type": 422,
            "unknown param": 422,
            "unknown pipeline": 404,
            "pipeline without webhook": 404,
            "unknown trigger": 404,
        }
        assert all("error" in r.json() for r in refused.values())

        # A retried call with the same Idempotency-Key gets the run of the first call.
        keyed = {**auth, "Idempotency-Key": "order-42"}
        once = http.post(url, json={"n": 8}, headers=keyed)
        again = http.post(url, json={"n": 8}, headers=keyed)
        assert (once.status_code, once.json()["created"]) == (201, True), once.text
        assert (again.status_code, again.json()["created"]) == (200, False), again.text
        assert again.json()["run_id"] == once.json()["run_id"]
        # The token also works in the X-Legato-Token header.
        header = http.post(url, json={"n": 9}, headers={"X-Legato-Token": token})
        assert header.status_code == 201, header.text

    runs = wait_runs(store, 3)
    assert len(runs) == 3, [(r.id, r.params) for r in runs]
    assert sorted(marks(project / "marks.txt")) == ["work7", "work8", "work9"]
    listed = runs_json(project)
    assert sorted(r["params"]["n"] for r in listed) == [7, 8, 9]
    assert {r["state"] for r in listed} == {"succeeded"}


# -- stopping ---------------------------------------------------------------------------------

BLOCK_CODE = (
    MARK
    + """
from legato import Context, pipeline, task

@task(retries=1)
def block(ctx: Context) -> int:
    mark(f"block{ctx.attempt}")
    (HERE / f"block{ctx.attempt}.pid").write_text(str(os.getpid()))
    if ctx.attempt == 1:
        time.sleep(30)
    return ctx.attempt

@pipeline
def blocking():
    block()

@task
def quick() -> None:
    mark("quick")

@pipeline
def fast():
    quick()
"""
)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_daemon_cleanly_even_with_a_task_running(
    tmp_path: Path, daemons: Daemons, store_of: Callable[[Path], Store], sig: signal.Signals
) -> None:
    project = make_project(tmp_path / "proj", BLOCK_CODE)
    run_id = submit(project, "blocking")
    daemon = daemons.up(project)
    worker = started_pid(project / "block1.pid")
    began = time.monotonic()
    code = daemon.stop(sig, timeout=10)
    took = time.monotonic() - began
    assert code == 0, daemon.output()
    assert took < 5, f"took {took:.1f}s to stop"
    printed = daemon.output()
    assert "stopping" in printed and printed.rstrip().endswith("stopped"), printed
    wait_for(lambda: not process_alive(worker), timeout=5, what="the task's process to end")
    # The run is left for the next daemon, which carries on with it.
    run = store_of(project).runs.get_run(run_id)
    assert run.state.value == "running" and run.lease_owner is None, run
    if sig == signal.SIGTERM:
        again = daemons.up(project)
        wait_runs(store_of(project), 1, timeout=15)
        assert marks(project / "marks.txt") == ["block1", "block2"]
        again.wait_output(f"resuming run {run_id}")


# -- restarts between an event and its run ---------------------------------------------------


def test_a_run_queued_while_the_daemon_is_down_runs_once_when_it_starts(
    tmp_path: Path, daemons: Daemons, store_of: Callable[[Path], Store]
) -> None:
    project = make_project(tmp_path / "proj", BLOCK_CODE)
    run_id = submit(project, "fast")
    assert [r["state"] for r in runs_json(project)] == ["queued"]
    daemon = daemons.up(project)
    runs = wait_runs(store_of(project), 1)
    assert [r.id for r in runs] == [run_id]
    daemon.wait_output(f"run {run_id} of fast succeeded")
    # A second daemon finds nothing left to do.
    daemon.stop()
    again = daemons.up(project)
    again.wait_output("Ctrl-C stops")
    time.sleep(1.5)
    assert len(all_runs(store_of(project))) == 1
    assert marks(project / "marks.txt") == ["quick"]


def test_sigkill_mid_task_then_a_new_daemon_adopts_and_finishes_the_run(
    tmp_path: Path, daemons: Daemons, store_of: Callable[[Path], Store]
) -> None:
    project = make_project(tmp_path / "proj", BLOCK_CODE)
    run_id = submit(project, "blocking")
    first = daemons.up(project)
    worker = started_pid(project / "block1.pid")
    first.kill()
    # The task's process does not outlive the daemon that drove it.
    wait_for(lambda: not process_alive(worker), timeout=10, what="worker exit")
    run = store_of(project).runs.get_run(run_id)
    assert run.state.value == "running" and run.lease_owner, run

    second = daemons.up(project)
    runs = wait_runs(store_of(project), 1, timeout=15)
    assert [r.id for r in runs] == [run_id]
    second.wait_output(f"resuming run {run_id}")
    assert marks(project / "marks.txt") == ["block1", "block2"]
    attempts = [
        (a.task_key, a.number, a.outcome) for a in store_of(project).runs.get_attempts(run_id)
    ]
    assert attempts == [("block", 1, "interrupted"), ("block", 2, "succeeded")]


FILE_CODE = (
    MARK
    + """
from legato import pipeline, task
from legato.triggers import on_file

@task(retries=1)
def load(path: str) -> str:
    mark(Path(path).name)
    return path

@pipeline(triggers=[on_file("inbox/*.csv", every="0.2s")])
def ingest(path: str):
    load(path)
"""
)


def test_file_trigger_across_a_sigkill_makes_exactly_one_run_per_file(
    tmp_path: Path, daemons: Daemons, store_of: Callable[[Path], Store]
) -> None:
    project = make_project(tmp_path / "proj", FILE_CODE)
    inbox = project / "inbox"
    inbox.mkdir()
    first = daemons.up(project)
    first.wait_output("Ctrl-C stops")
    (inbox / "a.csv").write_text("1\n")
    # Kill the daemon the moment the run of a.csv is recorded (its task may not have run).
    wait_for(lambda: bool(store_of(project).browse.list_runs()), timeout=15, what="a run for a.csv")
    first.kill()
    (inbox / "b.csv").write_text("2\n")  # arrives while nothing listens
    time.sleep(0.5)

    second = daemons.up(project)
    wait_runs(store_of(project), 2, timeout=15)
    (inbox / "c.csv").write_text("3\n")  # proves the new daemon is listening
    runs = wait_runs(store_of(project), 3, timeout=15)
    time.sleep(1.0)  # a few more listings: nothing new may come of them
    runs = all_runs(store_of(project))
    names = sorted(Path(r.params["path"]).name for r in runs)
    assert names == ["a.csv", "b.csv", "c.csv"], [(r.params, r.state) for r in runs]
    assert {r.state.value for r in runs} == {"succeeded"}
    done = marks(project / "marks.txt")
    assert sorted(set(done)) == ["a.csv", "b.csv", "c.csv"]
    assert all(done.count(n) <= 2 for n in set(done)), done  # a.csv again only if interrupted
    assert done.count("b.csv") == 1 and done.count("c.csv") == 1, done
    assert "failed" not in second.output()


CHANGING_CODE = (
    MARK
    + """
from legato import pipeline, task

@task
def first(n: int) -> int:
    mark(f"first{n}")
    return n

@pipeline
def takes_n(n: int = 0):
    first(n)

@pipeline
def one_task():
    first(1)

@pipeline
def steady():
    first(2)
"""
)

CHANGED_CODE = (
    MARK
    + """
from legato import pipeline, task

@task
def first(n: int) -> int:
    mark(f"first{n}")
    return n

@task
def second(n: int) -> int:
    mark(f"second{n}")
    return n

@pipeline
def takes_n(m: int = 0):  # the param was renamed
    first(m)

@pipeline
def one_task():  # a task was added
    second(first(1))

@pipeline
def steady():
    first(2)
"""
)


def test_runs_whose_code_changed_do_not_stop_the_daemon(
    tmp_path: Path, daemons: Daemons, store_of: Callable[[Path], Store]
) -> None:
    project = make_project(tmp_path / "proj", CHANGING_CODE)
    renamed = submit(project, "takes_n", "--param", "n=5")
    grown = submit(project, "one_task")
    (project / "flows.py").write_text(CHANGED_CODE)
    ok = submit(project, "steady")
    daemon = daemons.up(project)
    runs = wait_runs(store_of(project), 1, timeout=15)
    assert [r.id for r in runs if r.state.value == "succeeded"] == [ok]
    daemon.wait_output(f"cannot start run {renamed}")
    daemon.wait_output(f"cannot start run {grown}")
    time.sleep(1.5)
    assert daemon.proc.poll() is None, daemon.output()
    assert marks(project / "marks.txt") == ["first2"]
    # They stay queued (for the code to be restored), untouched.
    states = {r.id: r.state.value for r in all_runs(store_of(project))}
    assert states == {renamed: "queued", grown: "queued", ok: "succeeded"}
    assert store_of(project).runs.get_run(renamed).lease_owner is None


# -- upstream success --------------------------------------------------------------------------

UPSTREAM_CODE = (
    MARK
    + """
from legato import Context, pipeline, task
from legato.partitions import daily
from legato.triggers import on_success

@task
def step(ctx: Context, name: str) -> None:
    mark(f"{name}:{ctx.partition}")

@pipeline(partitions=daily(start="2024-01-01"))
def upstream():
    step("upstream")

@pipeline(partitions=daily(start="2024-01-01"), triggers=[on_success("upstream")])
def downstream():
    step("downstream")

@pipeline(triggers=[on_success("upstream")])
def unpartitioned():
    step("unpartitioned")
"""
)


def test_on_success_runs_the_downstream_once_for_the_same_partition(
    tmp_path: Path, daemons: Daemons, store_of: Callable[[Path], Store]
) -> None:
    project = make_project(tmp_path / "proj", UPSTREAM_CODE)
    # A success from before the daemon ever ran does not count: triggers start from now.
    old = cli("run", "upstream", "--partition", "2024-01-01", "--quiet", project=project)
    assert old.returncode == 0, old.stdout + old.stderr
    daemon = daemons.up(project)
    daemon.wait_output("Ctrl-C stops")
    time.sleep(1.0)  # let the daemon's first tick see the triggers
    submit(project, "upstream", "--partition", "2024-01-03")
    store = store_of(project)
    wait_runs(store, 1, pipeline="downstream")
    wait_runs(store, 1, pipeline="unpartitioned")
    time.sleep(2.5)  # longer than the scheduler's poll for upstream successes
    down = all_runs(store, "downstream")
    assert [(r.partition, r.state.value) for r in down] == [("2024-01-03", "succeeded")]
    assert down[0].origin == "trigger:after-upstream"
    plain = all_runs(store, "unpartitioned")
    assert [(r.partition, r.state.value) for r in plain] == [(None, "succeeded")]
    assert len(all_runs(store, "upstream")) == 2
    assert sorted(marks(project / "marks.txt")) == [
        "downstream:2024-01-03",
        "unpartitioned:None",
        "upstream:2024-01-01",
        "upstream:2024-01-03",
    ]


# -- schedules ----------------------------------------------------------------------------------

SCHEDULE_CODE = (
    MARK
    + """
from legato import pipeline, task

@task
def beat() -> None:
    mark("beat")

@pipeline(schedule="every 2s")
def ticking():
    beat()
"""
)


def test_an_interval_schedule_makes_runs_until_paused(
    tmp_path: Path, daemons: Daemons, store_of: Callable[[Path], Store]
) -> None:
    project = make_project(tmp_path / "proj", SCHEDULE_CODE)
    daemons.up(project)
    store = store_of(project)
    runs = wait_runs(store, 2, timeout=10)
    assert {r.origin for r in runs} == {"schedule:schedule"}
    paused = cli("schedules", "pause", "ticking", project=project)
    assert paused.returncode == 0, paused.stdout + paused.stderr
    listed = json.loads(cli("schedules", "--json", project=project).stdout)
    assert [(s["pipeline"], s["paused"]) for s in listed] == [("ticking", True)]
    time.sleep(1.0)  # a tick already under way when the pause landed may still make a run
    before = len(all_runs(store))
    time.sleep(4.5)  # two more ticks' worth
    assert len(all_runs(store)) == before
    unpaused = cli("schedules", "unpause", "ticking", project=project)
    assert unpaused.returncode == 0, unpaused.stdout + unpaused.stderr
    wait_runs(store, before + 1, timeout=8)


# -- concurrency limits ---------------------------------------------------------------------------

TIMED = (
    MARK
    + """
from legato import Context, pipeline, task

def timed(label, seconds):
    start = time.time()
    time.sleep(seconds)
    mark(f"{label},{start},{time.time()}", "spans.txt")
"""
)

SERIAL_CODE = (
    TIMED
    + """
@task
def slow(ctx: Context) -> None:
    timed(ctx.run_id, 1.0)

@pipeline(max_active_runs=1)
def serial():
    slow()
"""
)


def test_max_active_runs_one_never_overlaps_runs(
    tmp_path: Path, daemons: Daemons, store_of: Callable[[Path], Store]
) -> None:
    project = make_project(tmp_path / "proj", SERIAL_CODE, workers=3)
    submit_parallel(project, ("serial",), ("serial",), ("serial",))
    daemons.up(project)
    runs = wait_runs(store_of(project), 3, timeout=15)
    assert len(runs) == 3
    spans = intervals(project / "spans.txt")
    assert sorted(s[2] for s in spans) == sorted(r.id for r in runs)
    assert_no_overlap(spans)


POOL_CODE = (
    TIMED
    + """
@task(pool="warehouse")
def load(ctx: Context) -> None:
    timed(ctx.run_id, 0.8)

@pipeline
def orders():
    load()

@pipeline
def customers():
    load()
"""
)


def test_a_pool_of_one_slot_never_overlaps_tasks_of_two_pipelines(
    tmp_path: Path, daemons: Daemons, store_of: Callable[[Path], Store]
) -> None:
    project = make_project(
        tmp_path / "proj", POOL_CODE, workers=3, extra="\n[pools]\nwarehouse = 1\n"
    )
    submit_parallel(project, ("orders",), ("customers",), ("orders",), ("customers",))
    daemons.up(project)
    runs = wait_runs(store_of(project), 4, timeout=15)
    assert sorted(r.pipeline for r in runs) == ["customers", "customers", "orders", "orders"]
    spans = intervals(project / "spans.txt")
    assert len(spans) == 4
    assert_no_overlap(spans)


# -- backfills -----------------------------------------------------------------------------------

BACKFILL_CODE = (
    MARK
    + """
from legato import Context, pipeline, task
from legato.partitions import daily

@task
def day(ctx: Context) -> None:
    # The first day runs until the test has submitted a fresh run (it writes "go"), so that
    # run is queued while the first backfill run is running, however busy the machine.
    if ctx.partition == "2024-01-01":
        deadline = time.monotonic() + 60
        while not (HERE / "go").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
    mark(str(ctx.partition))

@pipeline(partitions=daily(start="2024-01-01"), max_active_runs=1)
def history():
    day()
"""
)


def test_backfill_while_the_daemon_runs_and_fresh_runs_go_first(
    tmp_path: Path, daemons: Daemons, store_of: Callable[[Path], Store]
) -> None:
    # max_active_runs=1 makes runs of the pipeline wait their turn, so the queue's order shows.
    # --max-concurrent 2 keeps a second backfill run queued while the first runs: the fresh
    # run, queued after it, must still go first (backfill runs queue behind fresh ones).
    project = make_project(tmp_path / "proj", BACKFILL_CODE)
    daemon = daemons.up(project)
    daemon.wait_output("Ctrl-C stops")
    made = cli(
        "backfill",
        "history",
        "--from",
        "2024-01-01",
        "--to",
        "2024-01-04",
        "--max-concurrent",
        "2",
        project=project,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    assert "4 partitions" in made.stdout and "2 at a time" in made.stdout
    store = store_of(project)

    def one_running_one_queued() -> bool:
        states = sorted(r.state.value for r in all_runs(store))
        return states == ["queued", "running"]

    wait_for(one_running_one_queued, timeout=60, what="backfill runs to be under way")
    fresh = submit(project, "history", "--partition", "2024-02-01")
    (project / "go").touch()
    runs = wait_runs(store, 5, timeout=60)
    by_key = {r.partition: r for r in runs}
    filled = [r for r in runs if r.backfill_id is not None]
    assert sorted(r.partition for r in filled) == [
        "2024-01-01",
        "2024-01-02",
        "2024-01-03",
        "2024-01-04",
    ]
    assert by_key["2024-02-01"].id == fresh and by_key["2024-02-01"].backfill_id is None
    # The fresh run starts right after the backfill run that was running when it came.
    later = [r for r in filled if r.partition != "2024-01-01"]
    assert all(by_key["2024-02-01"].started_at < r.started_at for r in later), [
        (r.partition, r.started_at) for r in runs
    ]
    # At most 2 backfill runs are queued or running at once: the next one is made only once
    # one of them has finished.
    assert by_key["2024-01-03"].created_at >= by_key["2024-01-01"].finished_at
    assert by_key["2024-01-04"].created_at >= by_key["2024-01-02"].finished_at
    spans = sorted((r.started_at, r.finished_at) for r in runs)
    assert all(a[1] <= b[0] for a, b in pairwise(spans))

    shown = cli("partitions", "history", "--json", project=project)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    states = {p["key"]: p["state"] for p in json.loads(shown.stdout)}
    for key in ("2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-02-01"):
        assert states[key] == "succeeded", (key, states[key])
    assert states["2024-01-05"] == "never run"

    def completed() -> bool:
        listed = json.loads(cli("backfills", "--json", project=project).stdout)
        return [b["backfill"]["state"] for b in listed] == ["completed"]

    wait_for(completed, timeout=10, what="the backfill to complete")


# -- the queue -----------------------------------------------------------------------------------

QUEUE_CODE = (
    MARK
    + """
from legato import pipeline, task

@task
def note(tag: str) -> None:
    mark(tag)

@pipeline(max_active_runs=1)
def queued(tag: str):
    note(tag)
"""
)


def test_queue_lists_runs_in_order_and_move_changes_it(
    tmp_path: Path, daemons: Daemons, store_of: Callable[[Path], Store]
) -> None:
    project = make_project(tmp_path / "proj", QUEUE_CODE)
    ids = {tag: submit(project, "queued", "--param", f"tag={tag}") for tag in "abc"}

    def order() -> list[str]:
        done = cli("queue", "--json", project=project)
        assert done.returncode == 0, done.stdout + done.stderr
        back = {v: k for k, v in ids.items()}
        return [back[r["id"]] for r in json.loads(done.stdout)]

    assert order() == ["a", "b", "c"]
    text = cli("queue", project=project).stdout
    assert text.index(ids["a"]) < text.index(ids["b"]) < text.index(ids["c"])
    moved = cli("queue", "move", ids["c"], "--top", project=project)
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert order() == ["c", "a", "b"]
    moved = cli("queue", "move", ids["a"], "--bottom", project=project)
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert order() == ["c", "b", "a"]
    both = cli("queue", "move", ids["a"], project=project)
    assert both.returncode != 0

    # The daemon starts them in that order (one at a time: max_active_runs=1).
    daemons.up(project)
    wait_runs(store_of(project), 3, timeout=15)
    assert marks(project / "marks.txt") == ["c", "b", "a"]
    assert order() == []
    done = cli("queue", "move", ids["a"], "--top", project=project)
    assert done.returncode != 0 and "queued" in done.stdout + done.stderr
