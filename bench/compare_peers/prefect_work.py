"""Prefect side of bench/compare.py: no-op workloads as flows of tasks.

Run by the Prefect venv's python: `prefect_work.py WORKLOAD N`, WORKLOAD one, chain or fan.
Prefect's default local set-up: no API URL, so it starts its temporary local server on a
SQLite database under PREFECT_HOME. The chain calls each task directly (each waits on the
one before); the fan submits the leaves to the default thread-pool task runner.
Prints {"run": seconds} on its last line: the flow call from start to return.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import prefect
from prefect import flow, task


@task
def noop(*args: Any) -> None:
    return None


@flow
def one() -> None:
    noop()


@flow
def chain(n: int) -> None:
    x = noop()
    for _ in range(n - 1):
        x = noop(x)


@flow
def fan(n: int) -> None:
    root = noop.submit()
    leaves = [noop.submit(root) for _ in range(n)]
    noop.submit(*leaves).result()


def main() -> None:
    workload, n = sys.argv[1], int(sys.argv[2])
    t0 = time.perf_counter()
    if workload == "one":
        one()
    elif workload == "chain":
        chain(n)
    else:
        fan(n)
    run = time.perf_counter() - t0
    print(json.dumps({"run": run, "version": prefect.__version__}))


if __name__ == "__main__":
    main()
