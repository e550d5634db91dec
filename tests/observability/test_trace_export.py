"""The SDK side of tracing in one process and its forks: a forked child (how the local
executor makes its zygote and workers) keeps no export thread of its parent's, and exports
its own spans as itself; with the SDK missing, a run goes on and says why it has no trace."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import make_project
from tests.observability.otlp_receiver import OtlpReceiver

REPO = Path(__file__).parents[2]

FORK = """
import os
import threading

from opentelemetry import trace

from legato.observability import tracing

assert tracing.from_env() is not None  # the parent's provider, with its export thread
tracer = trace.get_tracer("forks")  # made before the fork, used on both sides
with tracer.start_as_current_span("in parent"):
    pass
pid = os.fork()
if pid == 0:
    threads = threading.active_count()
    with tracer.start_as_current_span("in child") as span:
        span.set_attribute("threads.after.fork", threads)
    tracing.flush()
    os._exit(0)
os.waitpid(pid, 0)
print(pid, flush=True)
tracing.flush()
"""


def test_a_forked_child_drops_its_parents_exporter_and_exports_as_itself() -> None:
    with OtlpReceiver() as receiver:
        done = subprocess.run(
            [sys.executable, "-c", FORK], capture_output=True, text=True, timeout=120,
            env={**os.environ, **receiver.env()}, cwd=REPO,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        spans = receiver.wait_for(lambda got: {"in parent", "in child"} <= {s.name for s in got})
    child_pid = int(done.stdout.split()[-1])
    (parent,) = [s for s in spans if s.name == "in parent"]
    (child,) = [s for s in spans if s.name == "in child"]
    # Only the main thread: a zygote forks its workers from a single-threaded process.
    assert child.attributes["threads.after.fork"] == 1
    assert child.resource["process.pid"] == child_pid
    assert parent.resource["process.pid"] != child_pid
    assert [s.name for s in spans].count("in parent") == 1  # nothing sent twice


WORK = """
from legato import pipeline, task

@task
def step() -> int:
    return 1

@pipeline
def plain():
    step()
"""

WITHOUT_SDK = """
import sys
from pathlib import Path

sys.modules["opentelemetry"] = None  # as if the tracing extra were not installed

from legato.services.workspace import Workspace
from tests.helpers import door

with Workspace(Path(sys.argv[1])) as ws:
    run = door(ws).runs.run_pipeline("plain")
print(run.state)
"""


def test_tracing_asked_for_without_the_sdk_warns_and_the_run_goes_on(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", WORK)
    with OtlpReceiver() as receiver:
        done = subprocess.run(
            [sys.executable, "-c", WITHOUT_SDK, str(root)], capture_output=True, text=True,
            timeout=120, env={**os.environ, **receiver.env()}, cwd=REPO,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert receiver.requests == 0
    assert done.stdout.split()[-1] == "succeeded"
    assert "pip install 'legato[tracing]'" in done.stderr
    assert done.stderr.count("OpenTelemetry SDK is not installed") == 1
