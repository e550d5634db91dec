"""A `.map()` over 100,000 elements (issue 17): `total(square.map(numbers(N)))`.

    .venv/bin/python bench/map.py [--elements 100000] [--repeat 1] [--dir PATH]
        [--quiet] [--profile FILE]

A throwaway project (in --dir, else a temporary folder) holds one pipeline, `work`:
`numbers` returns `list(range(N))`, `square(x)` returns `x * x` for each element and
`total` sums the list of squares. Each repeat runs `legato run work` as a user would (a
fresh process; its stdout piped, so it prints plain lines) in a fresh project, and reports:

- whole: the `legato run` process from spawn to exit;
- run: the run's own duration, from its record (`started_at` to `finished_at`);
- peak memory: the largest summed PSS (and RSS) of the process tree (driver, zygote and
  workers), sampled from /proc every 50 ms by `bench/compare.py`'s `tree_memory`.

The total is checked against the sum of squares, read back through the door. --profile
runs the driver's process under cProfile, which
slows it down: its times are not the figures to report.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import commit, load, tree_memory  # bench/ is not a package: found by its path

FLOWS = '''from legato import pipeline, task

N = {n}


@task
def numbers() -> list[int]:
    return list(range(N))


@task
def square(x: int) -> int:
    return x * x


@task
def total(values: list[int]) -> int:
    if len(values) != N or values[:3] != [0, 1, 4][:N]:
        raise ValueError("the squares arrived incomplete or out of order")
    return sum(values)


@pipeline
def work():
    total(square.map(numbers()))
'''


# `legato run` leaves by os._exit (no interpreter teardown): the profile is written then.
PROFILED = """
import cProfile, os, sys
prof = cProfile.Profile()
leave = os._exit
def _exit(code):
    prof.disable()
    prof.dump_stats({out!r})
    leave(code)
os._exit = _exit
sys.argv = ["legato", *sys.argv[1:]]
from legato.cli.main import main
prof.enable()
try:
    main()
finally:
    _exit(0)
"""


def make_project(root: Path, n: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "legato.toml").write_text('[project]\nmodules = ["flows"]\n', encoding="utf-8")
    (root / "flows.py").write_text(FLOWS.format(n=n), encoding="utf-8")


def legato_cmd(project: Path, quiet: bool, profile: str | None) -> list[str]:
    tail = ["run", "work", "--project", str(project)] + (["--quiet"] if quiet else [])
    if profile:
        return [sys.executable, "-c", PROFILED.format(out=profile), *tail]
    return [str(Path(sys.executable).parent / "legato"), *tail]


def one_run(project: Path, n: int, quiet: bool, profile: str | None) -> dict[str, float]:
    make_project(project, n)
    peak_pss = peak_rss = 0
    done = threading.Event()
    t0 = time.perf_counter()
    proc = subprocess.Popen(legato_cmd(project, quiet, profile), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)

    def sample() -> None:
        nonlocal peak_pss, peak_rss
        while not done.is_set():
            pss, rss = tree_memory(proc.pid), tree_memory(proc.pid, "Rss:")
            peak_pss, peak_rss = max(peak_pss, pss), max(peak_rss, rss)
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    whole = time.perf_counter() - t0
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"legato run exited {proc.returncode}: {err.decode()[-2000:]}")
    lines = out.decode().splitlines()
    run_s, total = read_back(project)
    if total != sum(i * i for i in range(n)):
        raise SystemExit(f"wrong total {total}")
    return {"whole": whole, "run": run_s, "pss": peak_pss / 1e6, "rss": peak_rss / 1e6,
            "lines": float(len(lines))}


def read_back(project: Path) -> tuple[float, int]:
    """The run's own duration and the total, read through the door as the CLI would."""
    from legato.services.actor import Actor
    from legato.services.door import open_door

    with open_door(str(project), Actor.local_user()) as door:
        run = door.catalog.runs(limit=1).runs[0]
        assert run.started_at is not None and run.finished_at is not None
        took = (run.finished_at - run.started_at).total_seconds()
        return took, door.runs.output(run.id, "total")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--elements", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--dir", type=Path, default=None,
                    help="scratch folder for the projects (default: a temporary folder)")
    ap.add_argument("--quiet", action="store_true", help="legato run --quiet")
    ap.add_argument("--profile", default=None, help="cProfile the driver into this file")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="legato-map-", dir=args.dir))
    print(f"commit {commit()}, load {load()} before, scratch {base}", flush=True)
    samples = []
    try:
        for r in range(args.repeat):
            s = one_run(base / f"p{r}", args.elements, args.quiet, args.profile)
            samples.append(s)
            print(f"repeat {r + 1}: whole {s['whole']:.2f} s, run {s['run']:.2f} s, "
                  f"peak PSS {s['pss']:.0f} MB, peak RSS {s['rss']:.0f} MB, "
                  f"{s['lines']:.0f} lines out (load {load()})", flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    med = {k: statistics.median(s[k] for s in samples) for k in ("whole", "run", "pss", "rss")}
    print(f"median of {len(samples)}: whole {med['whole']:.2f} s, run {med['run']:.2f} s, "
          f"peak PSS {med['pss']:.0f} MB, peak RSS {med['rss']:.0f} MB; load {load()} after")


if __name__ == "__main__":
    main()
