"""Luigi side of bench/compare.py: no-op workloads on the local scheduler, workers=1.

Run by the Luigi venv's python: `luigi_work.py WORKLOAD N`, WORKLOAD one, chain or fan.
Prints {"run": seconds} on its last line; "run" is `luigi.build` from call to return.
Luigi keeps no state: a task is complete once it has run in this process.
"""

from __future__ import annotations

import json
import sys
import time

import luigi


class _Noop(luigi.Task):
    """A task that does nothing; done in memory, as Luigi has no store of its own."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.done = False

    def complete(self) -> bool:
        return self.done

    def run(self) -> None:
        self.done = True


class One(_Noop):
    pass


class Link(_Noop):
    i = luigi.IntParameter()

    def requires(self) -> list[luigi.Task]:
        return [Link(i=self.i - 1)] if self.i > 0 else []


class Root(_Noop):
    pass


class Leaf(_Noop):
    i = luigi.IntParameter()

    def requires(self) -> luigi.Task:
        return Root()


class Join(_Noop):
    n = luigi.IntParameter()

    def requires(self) -> list[luigi.Task]:
        return [Leaf(i=i) for i in range(self.n)]


def main() -> None:
    workload, n = sys.argv[1], int(sys.argv[2])
    target: luigi.Task = {"one": lambda: One(), "chain": lambda: Link(i=n - 1),
                          "fan": lambda: Join(n=n)}[workload]()
    t0 = time.perf_counter()
    ok = luigi.build([target], local_scheduler=True, workers=1, log_level="WARNING")
    run = time.perf_counter() - t0
    if not ok:
        raise SystemExit(f"luigi: {workload} {n} failed")
    print(json.dumps({"run": run, "version": luigi.__version__}))


if __name__ == "__main__":
    main()
