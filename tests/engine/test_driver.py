"""Runs driven end to end through the real store and the real local executor."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from legato.domain.ids import run_folder
from legato.domain.states import RunState, TaskState
from legato.services.workspace import Workspace
from tests.helpers import door, marks


def run(ws: Workspace, name: str, **params: object):
    r = door(ws).runs.run_pipeline(name, params)
    return r, {t.task_key: t for t in door(ws).runs.task_runs(r.id)}


SUMS = """
@task
def numbers(n: int) -> list[int]:
    return list(range(n))

@task
def square(x: int) -> int:
    return x * x

@task
def total(xs: list[int], offset: int) -> int:
    print("total of", xs)
    return sum(xs) + offset

@pipeline
def sums(n: int = 4, offset: int = 100):
    total(square.map(numbers(n)), offset)
"""


def test_results_flow_between_tasks(ws_factory) -> None:
    ws = ws_factory(SUMS)
    r, tasks = run(ws, "sums", n=5)
    assert r.state == RunState.SUCCEEDED
    assert [k for k in tasks if k.startswith("square[")] == [f"square[{i}]" for i in range(5)]
    from legato.domain.refs import ResultRef
    from legato.results.result_store import ResultStore

    store = ResultStore(ws.config.results_url)
    t = tasks["total"]
    assert store.get(ResultRef(t.result_uri, t.result_format or "none")) == 100 + 0 + 1 + 4 + 9 + 16
    assert "total of [0, 1, 4, 9, 16]" in door(ws).runs.logs(r.id, "total")[0].text()


def test_failure_spares_independent_branch_and_blocks_downstream(ws_factory) -> None:
    ws = ws_factory("""
@task
def bad() -> int:
    raise ValueError("bad row 12")

@task
def after(x: int) -> int:
    return x

@task
def good() -> int:
    time.sleep(0.3)
    return 1

@task
def good_after(x: int) -> int:
    return x + 1

@pipeline
def branches():
    after(bad())
    good_after(good())
""")
    r, tasks = run(ws, "branches")
    assert r.state == RunState.FAILED
    assert tasks["bad"].state == TaskState.FAILED
    assert tasks["bad"].error == "ValueError: bad row 12"
    assert tasks["after"].state == TaskState.UPSTREAM_FAILED
    assert tasks["good"].state == tasks["good_after"].state == TaskState.SUCCEEDED
    assert "bad" in (r.error or "")


def test_retry_with_delay_then_success(ws_factory) -> None:
    ws = ws_factory("""
@task(retries=2, retry_delay="0.3s")
def flaky(ctx: Context) -> str:
    mark(f"flaky{ctx.attempt}")
    if ctx.attempt < 3:
        raise ConnectionError("shop db busy")
    return "ok"

@pipeline
def p():
    flaky()
""")
    t0 = time.monotonic()
    r, _ = run(ws, "p")
    assert r.state == RunState.SUCCEEDED
    assert time.monotonic() - t0 >= 0.6  # two waits of 0.3 s
    attempts = door(ws).runs.attempts(r.id, "flaky")
    assert [a.outcome for a in attempts] == ["failed", "failed", "succeeded"]
    assert attempts[0].error == "ConnectionError: shop db busy"
    assert marks(ws.config.root / "marks.txt") == ["flaky1", "flaky2", "flaky3"]
    kinds = [
        (e.old_state, e.new_state)
        for e in ws.store.runs.get_events(r.id)
        if e.task_key == "flaky" and e.kind == "task_state"
    ]
    assert ("running", "up_for_retry") in kinds and ("up_for_retry", "queued") in kinds


def test_fail_now_and_retry_on_stop_retries(ws_factory) -> None:
    ws = ws_factory("""
@task(retries=3)
def stop() -> None:
    mark("stop")
    raise FailNow("bad config, retrying will not help")

@task(retries=3, retry_on=ConnectionError)
def typo() -> None:
    mark("typo")
    raise KeyError("missing")

@pipeline
def p():
    stop()
    typo()
""")
    r, tasks = run(ws, "p")
    assert r.state == RunState.FAILED
    assert marks(ws.config.root / "marks.txt").count("stop") == 1
    assert marks(ws.config.root / "marks.txt").count("typo") == 1
    assert tasks["stop"].error == "FailNow: bad config, retrying will not help"


def test_retry_waits_for_condition(ws_factory) -> None:
    ws = ws_factory("""
def db_up() -> bool:
    mark("check")
    up = (HERE / "db_up").exists()
    if (HERE / "marks.txt").read_text().split().count("check") == 2:
        (HERE / "db_up").touch()  # the database comes back after the second look
    return up

@task(retries=1, retry_when=when(db_up, interval=0.1, backoff=1.5, max_interval=0.3))
def load(ctx: Context) -> int:
    if not (HERE / "db_up").exists():
        raise ConnectionError("db down")
    return ctx.attempt

@pipeline
def p():
    load()
""")
    t0 = time.monotonic()
    r, tasks = run(ws, "p")
    assert r.state == RunState.SUCCEEDED
    # Two false answers, then the true one, with the backoff's waits before each look.
    assert marks(ws.config.root / "marks.txt").count("check") == 3
    assert time.monotonic() - t0 >= 0.1 + 0.15
    assert tasks["load"].attempt == 2


def test_condition_timeout_fails_task(ws_factory) -> None:
    ws = ws_factory("""
@task(retries=5, retry_when=when(lambda: False, interval=0.05, timeout=0.5, name="never"))
def load() -> None:
    raise ConnectionError("db down")

@pipeline
def p():
    load()
""")
    r, tasks = run(ws, "p")
    assert r.state == RunState.FAILED
    assert "condition never did not hold within 0.5s" in (tasks["load"].error or "")
    assert len(door(ws).runs.attempts(r.id, "load")) == 1


def test_timeout_kills_attempt_and_retries(ws_factory) -> None:
    ws = ws_factory("""
@task(timeout=0.5, retries=1)
def slow(ctx: Context) -> int:
    mark(f"slow{ctx.attempt}")
    if ctx.attempt == 1:
        time.sleep(60)
    return 1

@pipeline
def p():
    slow()
""")
    t0 = time.monotonic()
    r, _ = run(ws, "p")
    assert time.monotonic() - t0 < 10
    assert r.state == RunState.SUCCEEDED
    outcomes = [(a.outcome, a.error) for a in door(ws).runs.attempts(r.id, "slow")]
    assert outcomes == [("timeout", "timed out after 0.5s"), ("succeeded", None)]


def test_retry_delay_holds_no_worker(ws_factory) -> None:
    ws = ws_factory(
        """
@task(retries=1, retry_delay="1s")
def flaky(ctx: Context) -> None:
    mark(f"flaky{ctx.attempt}")
    if ctx.attempt == 1:
        raise ConnectionError("later")

@task
def other() -> None:
    time.sleep(0.2)
    mark("other")

@pipeline
def p():
    flaky()
    other()
""",
        workers=1,
    )
    r, _ = run(ws, "p")
    assert r.state == RunState.SUCCEEDED
    # With one worker, "other" ran while "flaky" waited for its retry.
    assert marks(ws.config.root / "marks.txt") == ["flaky1", "other", "flaky2"]


def test_skip_propagates(ws_factory) -> None:
    ws = ws_factory("""
@task
def maybe() -> int:
    raise Skip("no new data")

@task
def use(x: int) -> int:
    return x

@pipeline
def p():
    use(maybe())
""")
    r, tasks = run(ws, "p")
    assert r.state == RunState.SUCCEEDED
    assert tasks["maybe"].state == tasks["use"].state == TaskState.SKIPPED


def test_unstorable_result_fails_clearly_without_retry(ws_factory) -> None:
    ws = ws_factory("""
import threading

@task(retries=3)
def lock():
    mark("lock")
    return threading.Lock()

@pipeline
def p():
    lock()
""")
    r, tasks = run(ws, "p")
    assert r.state == RunState.FAILED
    assert "cannot be stored" in (tasks["lock"].error or "")
    assert marks(ws.config.root / "marks.txt") == ["lock"]


def test_cancel_from_another_process_view(ws_factory) -> None:
    ws = ws_factory("""
@task
def long() -> None:
    time.sleep(60)

@task
def after(x) -> None:
    pass

@pipeline
def p():
    after(long())
""")
    result: dict[str, object] = {}

    def drive() -> None:
        result["run"] = door(ws).runs.run_pipeline("p")

    t = threading.Thread(target=drive)
    t.start()
    other = Workspace(ws.config.root)
    deadline = time.monotonic() + 20
    run_id = None
    while time.monotonic() < deadline:
        runs = other.store.browse.list_runs(limit=1)
        if (
            runs
            and {t.task_key: t.state for t in door(other).runs.task_runs(runs[0].id)}.get("long")
            == TaskState.RUNNING
        ):
            run_id = runs[0].id
            break
        time.sleep(0.05)
    assert run_id is not None
    t0 = time.monotonic()
    door(other).runs.cancel(run_id)
    t.join(20)
    assert not t.is_alive()
    assert time.monotonic() - t0 < 5
    final = result["run"]
    assert final.state == RunState.CANCELED  # type: ignore[attr-defined]
    states = {x.task_key: x.state for x in door(other).runs.task_runs(run_id)}
    assert states == {"long": TaskState.CANCELED, "after": TaskState.CANCELED}
    other.close()


def test_rerun_from_failure_reuses_results(ws_factory) -> None:
    ws = ws_factory("""
@task
def extract() -> list[int]:
    mark("extract")
    return [1, 2, 3]

@task
def side() -> int:
    mark("side")
    return 7

@task
def transform(rows: list[int]) -> list[int]:
    mark("transform")
    if not (HERE / "fixed").exists():
        raise RuntimeError("bug in transform")
    return [r * 10 for r in rows]

@task
def load(rows: list[int], extra: int) -> int:
    mark("load")
    return sum(rows) + extra

@pipeline
def etl():
    load(transform(extract()), side())
""")
    first, _ = run(ws, "etl")
    assert first.state == RunState.FAILED
    (ws.config.root / "fixed").touch()
    again = door(ws).runs.rerun(first.id)
    assert again.parent_run_id == first.id and again.rerun_kind == "from_failure"
    done = door(ws).runs.execute(again.id)
    assert done.state == RunState.SUCCEEDED
    tasks = {t.task_key: t for t in door(ws).runs.task_runs(again.id)}
    assert tasks["extract"].reused_from == first.id
    assert tasks["side"].reused_from == first.id
    assert tasks["transform"].reused_from is None
    assert sorted(marks(ws.config.root / "marks.txt")) == sorted(
        ["extract", "side", "transform", "transform", "load"]
    )
    from legato.domain.refs import ResultRef
    from legato.results.result_store import ResultStore

    t = tasks["load"]
    assert (
        ResultStore(ws.config.results_url).get(ResultRef(t.result_uri, t.result_format or "none"))
        == 67
    )

    # Re-run one task and its downstream: only transform and load run again.
    third = door(ws).runs.execute(door(ws).runs.rerun(again.id, task="transform").id)
    assert third.state == RunState.SUCCEEDED
    assert marks(ws.config.root / "marks.txt").count("transform") == 3
    assert marks(ws.config.root / "marks.txt").count("extract") == 1


def test_rerun_of_mapped_node_keeps_succeeded_elements(ws_factory) -> None:
    ws = ws_factory("""
@task
def items() -> list[int]:
    return [1, 2, 3, 4]

@task
def work(x: int) -> int:
    mark(f"work{x}")
    if x == 3 and not (HERE / "fixed").exists():
        raise ValueError("three")
    return x

@task
def collect(xs: list[int]) -> int:
    return sum(xs)

@pipeline
def p():
    collect(work.map(items()))
""")
    first, tasks = run(ws, "p")
    assert first.state == RunState.FAILED
    assert tasks["work"].state == TaskState.FAILED
    assert tasks["collect"].state == TaskState.UPSTREAM_FAILED
    (ws.config.root / "fixed").touch()
    second = door(ws).runs.execute(door(ws).runs.rerun(first.id).id)
    assert second.state == RunState.SUCCEEDED
    assert sorted(marks(ws.config.root / "marks.txt")) == [
        "work1",
        "work2",
        "work3",
        "work3",
        "work4",
    ]


def test_rerun_of_a_mapped_task_runs_every_element_again(ws_factory) -> None:
    ws = ws_factory("""
@task
def items() -> list[int]:
    mark("items")
    return [1, 2, 3]

@task
def work(x: int) -> int:
    mark(f"work{x}")
    return x * int((HERE / "factor").read_text())

@task
def collect(xs: list[int]) -> int:
    mark("collect")
    return sum(xs)

@pipeline
def p():
    collect(work.map(items()))
""")
    (ws.config.root / "factor").write_text("1")
    first, _ = run(ws, "p")
    assert first.state == RunState.SUCCEEDED
    (ws.config.root / "factor").write_text("10")
    again = door(ws).runs.rerun(first.id, task="work")
    assert again.rerun_kind == "task"
    assert door(ws).runs.execute(again.id).state == RunState.SUCCEEDED
    tasks = {t.task_key: t for t in door(ws).runs.task_runs(again.id)}
    assert tasks["items"].reused_from == first.id
    assert [tasks[f"work[{i}]"].reused_from for i in range(3)] == [None, None, None]
    assert sorted(marks(ws.config.root / "marks.txt")) == sorted(
        ["items", *["work1", "work2", "work3", "collect"] * 2]
    )
    from legato.domain.refs import ResultRef
    from legato.results.result_store import ResultStore

    t = tasks["collect"]
    total = ResultStore(ws.config.results_url).get(
        ResultRef(t.result_uri, t.result_format or "none")
    )
    assert total == 60


@pytest.mark.parametrize(
    ("count", "failing", "listed", "more"),
    [(8, 6, 6, ""), (30, 25, 10, " and 15 more")],
)
def test_a_mapped_task_names_every_failed_element_or_says_how_many_more(
    ws_factory, count: int, failing: int, listed: int, more: str
) -> None:
    ws = ws_factory(f"""
@task
def items() -> list[int]:
    return list(range({count}))

@task
def work(x: int) -> int:
    if x < {failing}:
        raise ValueError(x)
    return x

@pipeline
def p():
    work.map(items())
""")
    first, tasks = run(ws, "p")
    assert first.state == RunState.FAILED
    names = ", ".join(f"work[{i}]" for i in range(listed))
    assert tasks["work"].error == f"{failing} of {count} elements failed: {names}{more}"


def test_rerun_of_running_or_clean_run_is_refused(ws_factory) -> None:
    from legato.services.service_errors import Conflict

    ws = ws_factory("""
@task
def ok() -> int:
    return 1

@pipeline
def p():
    ok()
""")
    r, _ = run(ws, "p")
    with pytest.raises(Conflict, match="no failed task"):
        door(ws).runs.rerun(r.id)


def test_thread_mode_runs_tasks_in_process(ws_factory) -> None:
    ws = ws_factory(
        """
@task
def pid() -> int:
    print("in a thread")
    return os.getpid()

@pipeline
def p():
    pid()
""",
        extra='mode = "thread"\n',
    )
    r, tasks = run(ws, "p")
    assert r.state == RunState.SUCCEEDED
    from legato.domain.refs import ResultRef
    from legato.results.result_store import ResultStore

    t = tasks["pid"]
    import os

    assert (
        ResultStore(ws.config.results_url).get(ResultRef(t.result_uri, t.result_format or "none"))
        == os.getpid()
    )
    assert "in a thread" in door(ws).runs.logs(r.id, "pid")[0].text()


def test_date_param_reaches_task_as_date(ws_factory) -> None:
    ws = ws_factory("""
from datetime import date

@task
def which(ctx: Context, day: date) -> str:
    assert isinstance(day, date) and isinstance(ctx.params["day"], date)
    return day.strftime("%A")

@pipeline
def p(day: date = date(2026, 1, 1)):
    which(day)
""")
    r = door(ws).runs.run_pipeline("p", {"day": "2026-11-20"}, from_text=True)
    assert r.state == RunState.SUCCEEDED
    assert r.params == {"day": "2026-11-20"}
    t = {x.task_key: x for x in door(ws).runs.task_runs(r.id)}["which"]
    from legato.domain.refs import ResultRef
    from legato.results.result_store import ResultStore

    assert (
        ResultStore(ws.config.results_url).get(ResultRef(t.result_uri, t.result_format or "none"))
        == "Friday"
    )


def test_results_go_to_a_configured_fsspec_url(ws_factory, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    ws = ws_factory(
        """
@task
def make() -> dict:
    return {"rows": 3}

@task
def use(d: dict) -> int:
    return d["rows"] * 2

@pipeline
def p():
    use(make())
""",
        extra=f'\n[results]\nurl = "file://{target}"\n',
    )
    r, tasks = run(ws, "p")
    assert r.state == RunState.SUCCEEDED
    assert tasks["use"].result_uri is not None and tasks["use"].result_uri.startswith(str(target))
    assert sorted(p.name for p in (target / run_folder(r.id)).iterdir()) == ["make.pkl", "use.pkl"]
    assert not (ws.config.root / ".legato" / "results").exists()


def test_cancel_of_a_run_nobody_drives_settles_it_at_once(ws_factory) -> None:
    ws = ws_factory("""
@task
def a() -> int:
    mark("a")
    return 1

@task
def b(x: int) -> int:
    return x

@pipeline
def p():
    b(a())
""")
    queued = door(ws).runs.create_run("p")
    done = door(ws).runs.cancel(queued.id)
    assert done.state == RunState.CANCELED
    assert {t.task_key: t.state for t in door(ws).runs.task_runs(queued.id)} == {
        "a": TaskState.CANCELED,
        "b": TaskState.CANCELED,
    }
    assert marks(ws.config.root / "marks.txt") == []
