"""Dagster side of bench/compare.py: no-op workloads as jobs of ops.

Run by the Dagster venv's python: `dagster_work.py WORKLOAD N`, WORKLOAD one, chain or fan.
The job runs with `execute_in_process` on `DagsterInstance.get()`, whose home
(DAGSTER_HOME, set by the driver to a temporary folder) holds its SQLite storage.
Prints {"run": seconds} on its last line: `execute_in_process` from call to return.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import dagster
from dagster import DagsterInstance, In, Nothing, job, op


@op
def noop() -> None:
    return None


@op(ins={"after": In(Nothing)})
def follow() -> None:
    return None


def build(workload: str, n: int) -> Any:
    if workload == "one":
        @job(name="one")
        def one() -> None:
            noop()
        return one
    if workload == "chain":
        @job(name=f"chain_{n}")
        def chain() -> None:
            x = noop()
            for _ in range(n - 1):
                x = follow(x)
        return chain

    @job(name=f"fan_{n}")
    def fan() -> None:
        root = noop()
        follow([follow(root) for _ in range(n)])
    return fan


def main() -> None:
    workload, n = sys.argv[1], int(sys.argv[2])
    the_job = build(workload, n)
    instance = DagsterInstance.get()
    t0 = time.perf_counter()
    result = the_job.execute_in_process(instance=instance)
    run = time.perf_counter() - t0
    if not result.success:
        raise SystemExit(f"dagster: {workload} {n} failed")
    print(json.dumps({"run": run, "version": dagster.__version__}))


if __name__ == "__main__":
    main()
