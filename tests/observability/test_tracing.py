"""Traces of real runs exported over OTLP/HTTP to a receiver in the test: the run's span, an
attempt span per attempt under it, and a task's own span, made in the worker process that
ran it, under its attempt's span."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import LEGATO, cli, free_port, make_project, wait_for
from tests.observability.otlp_receiver import OtlpReceiver, ReceivedSpan

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")

FLOWS = """
import os
import pathlib

from opentelemetry import trace

from legato import pipeline, task
from legato.partitions import static

tracer = trace.get_tracer("flows")  # made at import, in the driver, as modules usually do

@task
def extract(ctx) -> list[int]:
    with tracer.start_as_current_span("query orders") as span:
        span.set_attribute("db.rows", 3)
        span.set_attribute("task.pid", os.getpid())
    return [1, 2, 3]

@task(retries=1, retry_delay="0s")
def load(rows: list[int]) -> int:
    marker = pathlib.Path(__file__).parent / "failed-once"
    if not marker.exists():
        marker.write_text("x")
        raise RuntimeError("the warehouse is busy")
    return sum(rows)

@pipeline(partitions=static(["eu", "us"], name="region"))
def orders():
    load(extract())
"""


def _one(spans: list[ReceivedSpan], name: str, **attrs: object) -> ReceivedSpan:
    found = [
        s for s in spans
        if s.name == name and all(s.attributes.get(k) == v for k, v in attrs.items())
    ]
    assert len(found) == 1, (name, attrs, [(s.name, s.attributes) for s in spans])
    return found[0]


def _complete(spans: list[ReceivedSpan]) -> bool:
    names = [s.name for s in spans]
    return "run orders" in names and "query orders" in names and names.count("task load") == 2


@pytest.mark.parametrize("mode", ["process", "thread"])
def test_a_run_exports_its_span_with_attempts_under_it_and_the_tasks_own_span(
    tmp_path: Path, mode: str
) -> None:
    root = make_project(tmp_path / "p", FLOWS, extra=f'mode = "{mode}"\n')
    with OtlpReceiver() as receiver:
        done = cli("run", "orders", "--partition", "eu", "--json", project=root,
                   env=receiver.env(OTEL_SERVICE_NAME="orders-etl"))
        assert done.returncode == 0, done.stdout + done.stderr
        run_id = json.loads(done.stdout)["run"]["id"]
        spans = receiver.wait_for(_complete)

    run = _one(spans, "run orders")
    assert run.parent_id == ""
    assert run.attributes == {
        "legato.run_id": run_id,
        "legato.pipeline": "orders",
        "legato.partition": "eu",
        "legato.resumed": False,
        "legato.state": "succeeded",
    }
    assert run.resource["service.name"] == "orders-etl"
    driver_pid = run.resource["process.pid"]

    extract = _one(spans, "task extract")
    first = _one(spans, "task load", **{"legato.attempt": 1})
    second = _one(spans, "task load", **{"legato.attempt": 2})
    for attempt in (extract, first, second):
        assert (attempt.trace_id, attempt.parent_id) == (run.trace_id, run.span_id)
        assert attempt.attributes["legato.run_id"] == run_id
        assert attempt.attributes["legato.pipeline"] == "orders"
        assert attempt.attributes["legato.partition"] == "eu"
    assert extract.attributes["legato.task"] == "extract"
    assert extract.attributes["legato.outcome"] == "succeeded"
    assert (first.attributes["legato.outcome"], first.status_code) == ("failed", 2)
    assert first.status_message == "RuntimeError: the warehouse is busy"
    assert (second.attributes["legato.outcome"], second.status_code) == ("succeeded", 0)

    own = _one(spans, "query orders")
    assert (own.trace_id, own.parent_id) == (run.trace_id, extract.span_id)
    assert own.attributes["db.rows"] == 3
    assert own.resource["process.pid"] == own.attributes["task.pid"]
    if mode == "process":
        # Made in the worker process that ran the task, and exported from there.
        assert own.resource["process.pid"] != driver_pid
    else:
        assert own.resource["process.pid"] == driver_pid


FAILING = """
from legato import pipeline, task

@task
def broken() -> None:
    raise ValueError("no rows for today")

@pipeline
def nightly():
    broken()
"""


def test_a_failed_run_has_an_error_status_on_its_span(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", FAILING)
    with OtlpReceiver() as receiver:
        done = cli("run", "nightly", project=root, env=receiver.env())
        assert done.returncode == 1, done.stdout + done.stderr
        spans = receiver.wait_for(
            lambda got: {"run nightly", "task broken"} <= {s.name for s in got}
        )
    run = _one(spans, "run nightly")
    assert (run.attributes["legato.state"], run.status_code) == ("failed", 2)
    assert "legato.partition" not in run.attributes
    attempt = _one(spans, "task broken")
    assert attempt.status_message == "ValueError: no rows for today"
    assert run.resource["service.name"] == "legato"


QUIET = """
import pathlib
import sys

from legato import pipeline, task

@task
def probe() -> None:
    found = sorted(m for m in sys.modules if m.startswith("opentelemetry"))
    (pathlib.Path(__file__).parent / "worker-modules.txt").write_text(",".join(found))

@pipeline
def check():
    probe()
"""

SCRIPT = """
import sys
from pathlib import Path

from legato.services.workspace import Workspace
from tests.helpers import door

with Workspace(Path(sys.argv[1])) as ws:
    run = door(ws).runs.run_pipeline("check")
    assert run.state == "succeeded", run
print("driver:", ",".join(sorted(m for m in sys.modules if m.startswith("opentelemetry"))))
"""


@pytest.mark.parametrize("disabled", [False, True], ids=["no variables", "sdk disabled"])
def test_without_otel_variables_nothing_is_exported_nor_opentelemetry_imported(
    tmp_path: Path, disabled: bool
) -> None:
    root = make_project(tmp_path / "p", QUIET)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    with OtlpReceiver() as receiver:
        if disabled:  # pointed at the receiver, but the standard switch turns it all off
            env.update(receiver.env(OTEL_SDK_DISABLED="true"))
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT, str(root)],
            capture_output=True, text=True, timeout=120, env=env,
            cwd=Path(__file__).parents[2],
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert receiver.requests == 0
    assert done.stdout.splitlines()[-1] == "driver: "
    assert (root / "worker-modules.txt").read_text() == ""


DASK_FLOWS = """
import os

from opentelemetry import trace

from legato import pipeline, task

@task
def fetch() -> int:
    with trace.get_tracer("flows").start_as_current_span("call api") as span:
        span.set_attribute("task.pid", os.getpid())
    return 1

@pipeline
def remote():
    fetch()
"""


def test_a_task_on_a_dask_worker_nests_its_span_under_its_attempt(tmp_path: Path) -> None:
    pytest.importorskip("distributed", reason='needs the dask extra: pip install "legato[dask]"')
    root = make_project(tmp_path / "p", DASK_FLOWS, workers=1, extra='kind = "dask"\n')
    with OtlpReceiver() as receiver:
        done = cli("run", "remote", "--json", project=root, env=receiver.env())
        assert done.returncode == 0, done.stdout + done.stderr
        (attempt_row,) = json.loads(done.stdout)["attempts"]
        spans = receiver.wait_for(
            lambda got: {"run remote", "task fetch", "call api"} <= {s.name for s in got}
        )
    run = _one(spans, "run remote")
    attempt = _one(spans, "task fetch")
    own = _one(spans, "call api")
    assert (attempt.trace_id, attempt.parent_id) == (run.trace_id, run.span_id)
    assert (own.trace_id, own.parent_id) == (run.trace_id, attempt.span_id)
    # Exported by the Dask worker process itself, from its own environment.
    assert attempt_row["worker"].startswith("tcp://")
    assert own.resource["process.pid"] == own.attributes["task.pid"]
    assert own.resource["process.pid"] != run.resource["process.pid"]


def _docs_example() -> str:
    text = (Path(__file__).parents[2] / "docs" / "monitoring.md").read_text(encoding="utf-8")
    section = text.split("\n## Traces\n", 1)[1].split("\n## ", 1)[0]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_example_of_the_docs_nests_its_span_under_its_attempt(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", _docs_example())
    with OtlpReceiver() as receiver:
        done = cli("run", "orders", project=root, env=receiver.env())
        assert done.returncode == 0, done.stdout + done.stderr
        spans = receiver.wait_for(lambda got: "select orders" in {s.name for s in got})
        spans = receiver.wait_for(lambda got: "run orders" in {s.name for s in got})
    run = _one(spans, "run orders")
    attempt = _one(spans, "task extract_orders")
    _one(spans, "task total")
    own = _one(spans, "select orders")
    assert (own.parent_id, attempt.parent_id) == (attempt.span_id, run.span_id)
    assert own.attributes["db.rows"] == 1


CRASHY = """
import os
import time
from pathlib import Path

from legato import Context, pipeline, task

HERE = Path(__file__).parent

@task(retries=1)
def slow(ctx: Context) -> int:
    if ctx.attempt == 1:
        (HERE / "slow1.pid").write_text(str(os.getpid()))
        time.sleep(120)
    return 1

@task
def last(x: int) -> int:
    return x * 2

@pipeline
def crashy():
    last(slow())
"""


def test_a_resumed_run_gets_a_new_run_span_in_the_process_carrying_it_on(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", CRASHY)
    with OtlpReceiver() as receiver:
        driver = subprocess.Popen(
            [LEGATO, "run", "crashy", "--project", str(root)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, **receiver.env()},
        )
        wait_for(lambda: (root / "slow1.pid").exists(), what="the first attempt")
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(10)
        (listed,) = json.loads(cli("runs", "--json", project=root).stdout)
        resumed = cli("resume", listed["id"], project=root, env=receiver.env())
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        spans = receiver.wait_for(
            lambda got: {"run crashy", "task last"} <= {s.name for s in got}
        )
    # The killed driver never ended its run span: the one received is the resume's.
    run = _one(spans, "run crashy")
    assert run.attributes["legato.resumed"] is True
    assert run.attributes["legato.state"] == "succeeded"
    assert run.attributes["legato.run_id"] == listed["id"]
    again = _one(spans, "task slow", **{"legato.attempt": 2})
    assert (again.parent_id, again.attributes["legato.outcome"]) == (run.span_id, "succeeded")
    assert _one(spans, "task last").parent_id == run.span_id


def test_a_receiver_that_is_down_fails_no_run(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", FLOWS)
    nobody = f"http://127.0.0.1:{free_port()}"
    done = cli("run", "orders", "--partition", "us", "--json", project=root,
               env={"OTEL_EXPORTER_OTLP_ENDPOINT": nobody})
    assert done.returncode == 0, done.stdout + done.stderr
    shown = json.loads(done.stdout)
    assert shown["run"]["state"] == "succeeded"
    assert [t["state"] for t in shown["tasks"]] == ["succeeded", "succeeded"]


def test_runs_a_scheduler_daemon_drives_are_traced(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", FLOWS)
    with OtlpReceiver() as receiver, open(tmp_path / "scheduler.log", "wb") as log:
        daemon = subprocess.Popen(
            [LEGATO, "scheduler", "--project", str(root)], stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, **receiver.env()},
        )
        try:
            queued = cli("submit", "orders", "--partition", "us", project=root)
            assert queued.returncode == 0, queued.stdout + queued.stderr
            run_id = queued.stdout.split("queued run ", 1)[1].split()[0]
            spans = receiver.wait_for(_complete)
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(30)
    run = _one(spans, "run orders")
    assert run.attributes["legato.run_id"] == run_id
    assert run.attributes["legato.state"] == "succeeded"
    assert run.resource["process.pid"] == daemon.pid
    own = _one(spans, "query orders")
    assert own.parent_id == _one(spans, "task extract").span_id
    assert own.resource["process.pid"] != daemon.pid


WHERE = """
import os
import pathlib

from opentelemetry import trace

from legato import pipeline, task

VERSION = {version}

@task
def where() -> None:
    zygote = os.getppid()
    threads = len(os.listdir(f"/proc/{{zygote}}/task"))
    with trace.get_tracer("flows").start_as_current_span("where") as span:
        span.set_attribute("version", VERSION)
    out = pathlib.Path(__file__).parent / f"where-{{VERSION}}.txt"
    out.write_text(f"{{zygote}} {{threads}}")

@pipeline
def locate():
    where()
"""


def test_a_zygote_forked_after_tracing_began_stays_single_threaded(tmp_path: Path) -> None:
    # New code makes the daemon fork a new zygote, from a process whose exporter runs a
    # thread: the zygote must drop it, as it forks its workers from a single thread.
    root = make_project(tmp_path / "p", WHERE.format(version=1))
    with OtlpReceiver() as receiver, open(tmp_path / "scheduler.log", "wb") as log:
        daemon = subprocess.Popen(
            [LEGATO, "scheduler", "--project", str(root)], stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, **receiver.env()},
        )
        try:
            assert cli("submit", "locate", project=root).returncode == 0
            receiver.wait_for(lambda got: "run locate" in {s.name for s in got})
            (root / "flows.py").write_text(WHERE.format(version=2), encoding="utf-8")
            assert cli("submit", "locate", project=root).returncode == 0
            spans = receiver.wait_for(
                lambda got: [s.name for s in got].count("run locate") == 2
                and [s.name for s in got].count("where") == 2
            )
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(30)
    first, second = ((root / f"where-{v}.txt").read_text().split() for v in (1, 2))
    assert first[0] != second[0]  # the new code ran in a worker of a new zygote
    assert second[1] == "1"
    own = _one(spans, "where", version=2)
    (attempt,) = [s for s in spans if s.name == "task where" and s.trace_id == own.trace_id]
    assert own.parent_id == attempt.span_id
