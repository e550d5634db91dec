"""Start-up costs: `import legato`, the imports `legato run` pays for, a one-task `legato run`.

    .venv/bin/python bench/startup.py [--repeat 10]

Each figure is the median (and best) of fresh interpreter processes.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IMPORT = "import time; t = time.perf_counter(); import {mod}; print(time.perf_counter() - t)"


def import_time(module: str, repeat: int) -> list[float]:
    return [
        float(subprocess.run([sys.executable, "-c", IMPORT.format(mod=module)], check=True,
                             capture_output=True, text=True).stdout)
        for _ in range(repeat)
    ]


def process_time(cmd: list[str], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return times


def row(label: str, times: list[float]) -> str:
    return f"| {label} | {statistics.median(times) * 1000:.0f} ms | {min(times) * 1000:.0f} ms |"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=10)
    n = ap.parse_args().repeat
    legato = str(Path(sys.executable).parent / "legato")
    print("| what | median | best |")
    print("|---|---|---|")
    print(row("`import legato` (authoring API)", import_time("legato", n)))
    for mod in ("sqlalchemy", "typer", "rich.console", "pydantic"):
        print(row(f"`import {mod}`", import_time(mod, n)))
    print(row("`python -c pass`", process_time([sys.executable, "-c", "pass"], n)))
    print(row("`legato --help`", process_time([legato, "--help"], n)))
    with tempfile.TemporaryDirectory(prefix="legato-bench-startup-") as tmp:
        project = Path(tmp)
        (project / "legato.toml").write_text('[project]\nmodules = ["flows"]\n')
        (project / "flows.py").write_text(
            "from legato import pipeline, task\n\n@task\ndef noop():\n    return None\n\n"
            "@pipeline\ndef one():\n    noop()\n"
        )
        cmd = [legato, "run", "one", "-q", "--project", str(project)]
        subprocess.run(cmd, check=True, capture_output=True)  # creates and migrates the store
        print(row("`legato run one` (whole process)", process_time(cmd, n)))


if __name__ == "__main__":
    main()
