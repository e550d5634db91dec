"""Legato side of bench/compare.py: no-op workloads as pipelines of tasks.

Run by this checkout's python: `legato_work.py WORKLOAD N PROJECT`, WORKLOAD one, chain
or fan. PROJECT is a folder (made here if missing) holding just that workload's pipeline,
with Legato's defaults: the SQLite store in its .legato folder and the local executor.
Prints {"run": seconds} on its last line: `run_pipeline` from call to return, with the
workers already forked (as `legato run` has them before its run starts). The process then
leaves as `legato run` does, without the interpreter's teardown.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

CODE = {
    "one": '''
@pipeline
def work():
    noop()
''',
    "chain": '''
@pipeline
def work():
    x = noop()
    for _ in range({n} - 1):
        x = noop(x)
''',
    "fan": '''
@pipeline
def work():
    root = noop()
    noop(*[noop(root) for _ in range({n})])
''',
}

HEAD = '''from legato import pipeline, task


@task
def noop(*args) -> None:
    return None

'''


def make_project(root: Path, workload: str, n: int) -> None:
    """Write a project with the one pipeline `work` unless it is there already."""
    if (root / "legato.toml").exists():
        return
    root.mkdir(parents=True, exist_ok=True)
    (root / "legato.toml").write_text('[project]\nmodules = ["flows"]\n', encoding="utf-8")
    (root / "flows.py").write_text(HEAD + CODE[workload].format(n=n), encoding="utf-8")


def main() -> None:
    workload, n, project = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    make_project(project, workload, n)
    from legato.cli.main import _leave
    from legato.services.actor import Actor
    from legato.services.workspace import Workspace

    with Workspace(project) as ws:
        ws.executor()
        runs = ws.door(Actor.local_user()).runs
        t0 = time.perf_counter()
        run = runs.run_pipeline("work")
        elapsed = time.perf_counter() - t0
        if run.state.value != "succeeded":
            raise SystemExit(f"legato: {workload} {n}: run {run.id} {run.state}")
    from importlib.metadata import version

    print(json.dumps({"run": elapsed, "version": version("legato")}))
    _leave(0)


if __name__ == "__main__":
    main()
