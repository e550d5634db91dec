"""Result store benchmark: put + get of typical frames into a local folder.

Shows what choosing a format costs: a frame whose dtypes Parquet keeps is written once;
a pandas object column of scalars is written, read back and compared before it is kept;
a column of dicts is pickled without trying Parquet. Usage:

    .venv/bin/python bench/results.py [--repeat 7] [--rows 100000]

Prints one line per frame (best and median of the repeats, milliseconds) in Markdown.
"""

from __future__ import annotations

import argparse
import decimal
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any


def frames(rows: int) -> dict[str, Callable[[], Any]]:
    import numpy as np
    import pandas as pd
    import polars as pl
    import pyarrow as pa

    rng = np.random.default_rng(0)
    numbers = {"i": np.arange(rows), "f": rng.random(rows)}
    words = [f"w{i % 1000}" for i in range(rows)]
    return {
        "pandas: int, float, str, datetime": lambda: pd.DataFrame(
            {**numbers, "s": words, "t": pd.date_range("2024-01-01", periods=rows, freq="s")}
        ),
        "pandas: object column of Decimals": lambda: pd.DataFrame(
            {"i": numbers["i"], "d": [decimal.Decimal(i % 1000) / 8 for i in range(rows)]}
        ),
        "pandas: object column of dicts": lambda: pd.DataFrame(
            {"i": numbers["i"], "d": [{"k": i} for i in range(rows)]}
        ),
        "polars: int, float, str, list": lambda: pl.DataFrame(
            {**numbers, "s": words, "l": [[i, i] for i in range(rows)]}
        ),
        "arrow: int, float, str": lambda: pa.table({**numbers, "s": words}),
        "arrow: with a list column": lambda: pa.table({**numbers, "l": [[i] for i in range(rows)]}),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--rows", type=int, default=100_000)
    args = ap.parse_args()
    from legato.results import ResultStore

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, rows={args.rows}, repeat={args.repeat}")
    print("| frame | format | put best | put median | get best |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="legato-bench-") as tmp:
        store = ResultStore(tmp)
        for name, make in frames(args.rows).items():
            value = make()
            puts, gets, fmt = [], [], ""
            for i in range(args.repeat):
                t0 = time.perf_counter()
                ref = store.put(f"r/{i}", value)
                t1 = time.perf_counter()
                store.get(ref)
                gets.append(time.perf_counter() - t1)
                puts.append(t1 - t0)
                fmt = ref.format
            print(f"| {name} | {fmt} | {min(puts) * 1000:.1f} ms | "
                  f"{statistics.median(puts) * 1000:.1f} ms | {min(gets) * 1000:.1f} ms |")


if __name__ == "__main__":
    main()
