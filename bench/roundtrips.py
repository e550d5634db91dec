"""Database round trips per chained task on PostgreSQL, measured through a delay proxy.

Runs chain-N on the given PostgreSQL store twice: straight, and through ``delay_proxy.py``
(started here) adding ``--delay-ms`` to each direction. The added time per task divided by
the added time of one ``SELECT 1`` is the number of round trips a chained task waits for on
the critical path. The tables live in a schema of their own, dropped at the end. Usage:

    .venv/bin/python bench/roundtrips.py \
        [--store-url postgresql+psycopg://postgres@127.0.0.1:5432/test] \
        [--delay-ms 1] [--tasks 200] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).parent))
from core import make_project, time_runs

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def chain_code(n: int) -> str:
    """A project module with one pipeline, ``chain``: ``n`` no-op tasks in a line."""
    return f'''
from legato import pipeline, task


@task
def noop(*args) -> None:
    return None


@pipeline
def chain():
    x = noop()
    for _ in range({n - 1}):
        x = noop(x)
'''


@contextmanager
def delay_proxy(host: str, port: int, delay_ms: float) -> Iterator[int]:
    """Run ``delay_proxy.py`` in a process of its own for the block; yields its port."""
    script = Path(__file__).parent / "delay_proxy.py"
    proc = subprocess.Popen(
        [sys.executable, str(script), "--target", f"{host}:{port}", "--delay-ms", str(delay_ms)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "port N" once it listens
        if not line.startswith("port "):
            raise SystemExit(f"delay proxy did not start: {line!r}")
        yield int(line.split()[1])
    finally:
        proc.terminate()
        proc.wait()


def with_schema(url: str, schema: str, port: int | None = None) -> str:
    """``url`` pointed at ``schema`` (and at ``port`` on 127.0.0.1, the proxy, if given)."""
    u = make_url(url)
    if port is not None:
        u = u.set(host="127.0.0.1", port=port)
    u = u.update_query_dict({"options": f"-csearch_path={schema}"})
    return u.render_as_string(hide_password=False)


def select1_seconds(url: str, count: int = 200) -> float:
    """Median wall time of one ``SELECT 1`` on one kept connection."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            times = []
            for _ in range(count):
                t0 = time.perf_counter()
                conn.exec_driver_sql("SELECT 1").scalar()
                times.append(time.perf_counter() - t0)
        return statistics.median(times)
    finally:
        engine.dispose()


def chain_seconds(root: Path, url: str, tasks: int, repeat: int, workers: int) -> float:
    """Best run time of chain-``tasks`` in a project whose store is ``url``."""
    project = make_project(root, workers, chain_code(tasks))
    toml = project / "legato.toml"
    toml.write_text(toml.read_text() + f'\n[store]\nurl = "{url}"\n', encoding="utf-8")
    return min(time_runs(project, ["chain"], repeat)["chain"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store-url", default=DEFAULT_URL)
    ap.add_argument("--delay-ms", type=float, default=1.0, help="added delay per direction")
    ap.add_argument("--tasks", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    base = make_url(args.store_url)
    schema = f"bench_trips_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(args.store_url, poolclass=sa.pool.NullPool)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        direct_url = with_schema(args.store_url, schema)
        with tempfile.TemporaryDirectory(prefix="legato-bench-") as tmp:
            direct = chain_seconds(Path(tmp) / "direct", direct_url, args.tasks, args.repeat,
                                   args.workers)
            direct_rt = select1_seconds(direct_url)
            with delay_proxy(base.host or "127.0.0.1", base.port or 5432, args.delay_ms) as port:
                proxied_url = with_schema(args.store_url, schema, port)
                delayed = chain_seconds(Path(tmp) / "delayed", proxied_url, args.tasks,
                                        args.repeat, args.workers)
                delayed_rt = select1_seconds(proxied_url, count=50)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()
    per_task = (delayed - direct) / args.tasks
    per_trip = delayed_rt - direct_rt
    print(f"load {os.getloadavg()[0]:.2f}, chain-{args.tasks}, delay {args.delay_ms} ms "
          f"per direction, best of {args.repeat}")
    print(f"SELECT 1: {direct_rt * 1000:.3f} ms direct, {delayed_rt * 1000:.3f} ms proxied")
    print(f"chain-{args.tasks}: {direct:.3f} s direct, {delayed:.3f} s proxied: "
          f"{per_task * 1000:.3f} ms added per task")
    print(f"round trips per task: {per_task / per_trip:.2f}")


if __name__ == "__main__":
    main()
