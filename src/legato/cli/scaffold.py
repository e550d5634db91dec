"""``legato init``: a new project folder that runs as it is."""

from __future__ import annotations

from pathlib import Path

CONFIG = """\
[project]
name = "{name}"
# Modules or packages (relative to this folder) that define pipelines.
modules = ["pipelines"]

[executor]
workers = 2          # worker processes for tasks
mode = "process"     # or "thread" for light tasks in the driver process

# [store]
# url = "postgresql://user@host/db"   # default: SQLite at .legato/legato.db
# [results]
# url = "s3://bucket/legato"          # default: .legato/results (any fsspec URL works)
"""

PIPELINES = '''\
"""Pipelines of this project. Run one with: legato run hello"""

from legato import Context, pipeline, task


@task(retries=2, retry_delay="1s")
def greet(ctx: Context, name: str) -> str:
    """Say hello to someone."""
    ctx.log.info("greeting %s in run %s", name, ctx.run_id)
    return f"Hello, {name}!"


@task
def shout(message: str) -> str:
    """Turn a greeting into a shout."""
    print(message.upper())
    return message.upper()


@pipeline
def hello(name: str = "world"):
    """Greet someone, then shout about it."""
    shout(greet(name))
'''


class ScaffoldError(Exception):
    """The target folder already holds a project."""


def scaffold(target: Path) -> list[Path]:
    """Write legato.toml and pipelines.py into ``target``; never overwrites a project."""
    target.mkdir(parents=True, exist_ok=True)
    files = {
        target / "legato.toml": CONFIG.format(name=target.resolve().name),
        target / "pipelines.py": PIPELINES,
        target / ".gitignore": ".legato/\n__pycache__/\n",
    }
    existing = [p for p in files if p.exists() and p.name != ".gitignore"]
    if existing:
        raise ScaffoldError(f"{existing[0]} exists already; pick an empty folder")
    for path, text in files.items():
        if not path.exists():
            path.write_text(text, encoding="utf-8")
    return list(files)
