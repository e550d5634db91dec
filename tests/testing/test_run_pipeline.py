"""legato.testing.run_pipeline: a pipeline run in this process on a store of its own, and
what each task did (state, output, error, traceback, log), by pipeline object or by name."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from legato import Context, FailNow, pipeline, task
from legato.domain.states import RunState, TaskState
from legato.partitions import daily
from legato.testing import (
    Harness,
    NoOutput,
    RunFailed,
    RunTimeout,
    UnknownTask,
    run_pipeline,
)


@task
def numbers(ctx: Context, n: int) -> list[int]:
    ctx.log.info("making %d numbers", n)
    return list(range(n))


@task
def total(values: list[int]) -> int:
    print(f"adding {len(values)} values")
    return sum(values)


@pipeline
def adding(n: int = 3):
    total(numbers(n))


def test_each_task_gives_its_state_output_and_log(tmp_path: Path) -> None:
    result = run_pipeline(adding, params={"n": 5}, tmp_path=tmp_path)

    assert result.succeeded and result.state == RunState.SUCCEEDED
    assert list(result.tasks) == ["numbers", "total"]
    assert result.tasks["numbers"].output == [0, 1, 2, 3, 4]
    assert result.output_of("total") == 10
    assert result.tasks["total"].state == TaskState.SUCCEEDED
    assert "INFO legato.task.numbers: making 5 numbers" in result.tasks["numbers"].log
    assert "adding 5 values" in result.tasks["total"].log
    assert "== total ==\nadding 5 values" in result.log
    assert result.params == {"n": 5}
    # The store, results and logs are under tmp_path, nowhere else.
    assert (tmp_path / "legato.db").is_file()
    assert list((tmp_path / "logs").rglob("total.1.log"))


def test_default_params_and_a_temporary_folder_that_is_removed() -> None:
    result = run_pipeline(adding)
    assert result.output_of("total") == 3


def test_an_unknown_task_name_says_which_tasks_there_are() -> None:
    result = run_pipeline(adding)
    with pytest.raises(UnknownTask, match=r"no task 'totl'; did you mean 'total'\? "
                       r"\(tasks: numbers, total\)"):
        result.output_of("totl")
    with pytest.raises(UnknownTask, match="no task 'nothing'"):
        result.tasks["nothing"]


@task(retries=1)
def flaky(ctx: Context) -> str:
    if ctx.attempt == 1:
        raise ConnectionError("busy on the first attempt")
    return "second"


@task
def broken(word: str) -> None:
    raise ValueError(f"cannot use {word!r}")


@task
def after(nothing: None) -> str:
    return "never"


@pipeline
def failing():
    after(broken(flaky()))


def test_a_failure_gives_its_error_traceback_and_attempts() -> None:
    result = run_pipeline(failing)

    assert not result.succeeded and result.state == RunState.FAILED
    assert [t.key for t in result.failed_tasks] == ["broken"]
    bad = result.tasks["broken"]
    assert bad.error == "ValueError: cannot use 'second'"
    assert bad.traceback is not None
    assert 'raise ValueError(f"cannot use {word!r}")' in bad.traceback
    assert __file__ in bad.traceback
    # A retried task: both attempts, the first one's error, and the output of the second.
    retried = result.tasks["flaky"]
    assert [(a.number, a.outcome) for a in retried.attempts] == [(1, "failed"), (2, "succeeded")]
    assert "ConnectionError: busy on the first attempt" in (retried.attempts[0].traceback or "")
    assert retried.output == "second"
    assert result.tasks["after"].state == TaskState.UPSTREAM_FAILED
    with pytest.raises(NoOutput, match=r"task 'broken' has no output: it is failed: ValueError"):
        result.output_of("broken")


def test_raise_for_failure_shows_the_failed_tasks_traceback() -> None:
    result = run_pipeline(failing)
    with pytest.raises(RunFailed) as caught:
        result.raise_for_failure()
    message = str(caught.value)
    assert "-- task 'broken' failed: ValueError: cannot use 'second'" in message
    assert "Traceback (most recent call last)" in message
    assert caught.value.result is result
    assert run_pipeline(adding).raise_for_failure().succeeded


@task
def stops(ctx: Context) -> None:
    raise FailNow("no point retrying")


@pipeline
def stopping():
    stops()


def test_failnow_is_one_failed_attempt() -> None:
    result = run_pipeline(stopping)
    assert result.tasks["stops"].error == "FailNow: no point retrying"
    assert len(result.tasks["stops"].attempts) == 1


@task
def window(ctx: Context) -> tuple[str | None, str]:
    assert ctx.window_start is not None
    return ctx.partition, ctx.window_start.isoformat()


@pipeline(partitions=daily(start="2026-01-01", tz="Europe/Berlin"))
def by_day():
    window()


def test_a_partition_reaches_the_tasks() -> None:
    result = run_pipeline(by_day, partition="2026-03-29")
    assert result.partition == "2026-03-29"
    assert result.output_of("window") == ("2026-03-29", "2026-03-29T00:00:00+01:00")


def test_a_bad_param_or_partition_is_refused_before_anything_runs() -> None:
    from legato.services.service_errors import ServiceError

    with pytest.raises(ServiceError, match="n"):
        run_pipeline(adding, params={"n": "many"})
    with pytest.raises(ServiceError, match="partition"):
        run_pipeline(by_day, partition="yesterday")


@task
def stores() -> list[str]:
    return ["berlin", "tokyo", "new_york"]


@task
def shout(store: str) -> str:
    return store.upper()


@pipeline
def fanning():
    shout.map(stores())


def test_a_mapped_task_gives_each_element_and_the_list() -> None:
    result = run_pipeline(fanning)
    assert result.output_of("shout") == ["BERLIN", "TOKYO", "NEW_YORK"]
    assert result.tasks["shout[1]"].output == "TOKYO"


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # lets the abandoned attempt's thread end


def test_a_run_past_its_timeout_is_canceled(gate: threading.Event) -> None:
    @task
    def hangs() -> None:
        gate.wait()

    @pipeline
    def hanging():
        hangs()

    with pytest.raises(RunTimeout, match=r"did not finish within 0.5 s and was canceled") as caught:
        run_pipeline(hanging, timeout=0.5)
    assert caught.value.result.state == RunState.CANCELED
    assert caught.value.result.tasks["hangs"].state == TaskState.CANCELED


PROJECT_MODULE = '''
from legato import pipeline, task

@task
def greet(name: str) -> str:
    print("greeting", name)
    return f"hello {name}"

@pipeline
def hello(name: str = "world"):
    greet(name)
'''


def test_a_pipeline_of_a_project_folder_by_name(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "legato.toml").write_text(
        '[project]\nmodules = ["flows"]\n[executor]\nmode = "process"\nworkers = 1\n'
    )
    (project / "flows.py").write_text(PROJECT_MODULE)

    result = run_pipeline(
        "hello", project=project, params={"name": "tests"}, tmp_path=tmp_path / "run"
    )
    assert result.output_of("greet") == "hello tests"
    assert "greeting tests" in result.tasks["greet"].log
    # The project's own store is not touched: the run is in the harness's.
    assert not (project / ".legato").exists()
    assert (tmp_path / "run" / "legato.db").is_file()


def test_a_name_without_a_project_or_an_object_with_one_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="needs project=FOLDER"):
        run_pipeline("hello")
    with pytest.raises(TypeError, match="not the object"):
        run_pipeline(adding, project=tmp_path)


def test_a_harness_takes_a_project_or_pipelines(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="one of the two"):
        Harness(tmp_path)
    with pytest.raises(TypeError, match="one of the two"):
        Harness(tmp_path, project=tmp_path, pipelines=[adding])
    with pytest.raises(TypeError, match="not a pipeline: <task numbers>"):
        Harness(tmp_path, pipelines=[numbers])  # type: ignore[list-item]


def test_a_harness_keeps_several_runs_on_one_store(tmp_path: Path) -> None:
    with Harness(tmp_path, pipelines=[adding, failing]) as harness:
        assert harness.pipelines == ["adding", "failing"]
        first = harness.run(adding, params={"n": 2})
        second = harness.run("adding", params={"n": 4})
        assert (first.output_of("total"), second.output_of("total")) == (1, 6)
        assert first.run_id != second.run_id
        assert harness.result(first.run_id[:12]).output_of("numbers") == [0, 1]


def test_a_rerun_from_failure_reuses_what_succeeded(tmp_path: Path) -> None:
    calls: list[str] = []

    @task
    def first() -> int:
        calls.append("first")
        return 20

    @task
    def second(value: int) -> int:
        calls.append("second")
        if len(calls) == 2:
            raise RuntimeError("down the first time")
        return value + 1

    @pipeline
    def twice():
        second(first())

    with Harness(tmp_path, pipelines=[twice]) as harness:
        failed = harness.run(twice)
        assert failed.tasks["second"].error == "RuntimeError: down the first time"
        again = harness.rerun(failed.run_id)
        assert again.output_of("second") == 21
        assert calls == ["first", "second", "second"]  # first's result was reused


@task(pool="warehouse")
def load_one() -> str:
    return "loaded"


@pipeline
def pooled():
    load_one()


def test_the_pools_a_pipeline_object_names_have_a_slot() -> None:
    assert run_pipeline(pooled).output_of("load_one") == "loaded"
