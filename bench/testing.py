"""legato.testing: what a one-task pipeline costs a test, and what the pytest plugin costs a
pytest session that does not use it.

    .venv/bin/python bench/testing.py [--repeat 10]

- first run: a fresh interpreter imports legato.testing and a one-task pipeline, then times
  its first ``run_pipeline`` (the store's libraries are imported then, the store is made);
- later runs: ``run_pipeline`` again in that process, each on a new temporary store;
- plugin import: ``import legato.testing.plugin`` in a fresh interpreter that has pytest.

Each figure is the median (and best) of ``--repeat`` fresh processes or calls.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

PIPELINE = '''
from legato import pipeline, task

@task
def one(n: int) -> int:
    return n + 1

@pipeline
def single(n: int = 1):
    one(n)
'''

DRIVE = '''
import json, sys, time
sys.path.insert(0, {folder!r})
from legato.testing import run_pipeline
import bench_single
times = []
for _ in range({calls}):
    t = time.perf_counter()
    result = run_pipeline(bench_single.single)
    times.append(time.perf_counter() - t)
    assert result.output_of("one") == 2
print(json.dumps(times))
'''

PLUGIN = (
    "import time, pytest; t = time.perf_counter(); import legato.testing.plugin; "
    "print(time.perf_counter() - t)"
)


def row(label: str, times: list[float]) -> str:
    return f"| {label} | {statistics.median(times) * 1000:.0f} ms | {min(times) * 1000:.0f} ms |"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "bench_single.py").write_text(PIPELINE)
        first: list[float] = []
        later: list[float] = []
        for _ in range(args.repeat):
            out = subprocess.run(
                [sys.executable, "-c", DRIVE.format(folder=tmp, calls=5)],
                check=True, capture_output=True, text=True,
            ).stdout
            times = json.loads(out)
            first.append(times[0])
            later.extend(times[1:])
    plugin = [
        float(subprocess.run([sys.executable, "-c", PLUGIN], check=True, capture_output=True,
                             text=True).stdout)
        for _ in range(args.repeat)
    ]
    print("| what | median | best |")
    print("|---|---|---|")
    print(row("run_pipeline, one task: first run in a process", first))
    print(row("run_pipeline, one task: later runs (a new store each)", later))
    print(row("import legato.testing.plugin (pytest loaded)", plugin))


if __name__ == "__main__":
    main()
