"""Shared test helpers: throwaway projects written to disk, and running the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

LEGATO = str(Path(sys.executable).parent / "legato")


def make_project(
    root: Path, code: str, *, module: str = "flows", workers: int = 2, extra: str = ""
) -> Path:
    """A project folder with legato.toml and one pipeline module holding ``code``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "legato.toml").write_text(
        f'[project]\nname = "{root.name}"\nmodules = ["{module}"]\n\n'
        f"[executor]\nworkers = {workers}\nlease_seconds = 3\n{extra}",
        encoding="utf-8",
    )
    (root / f"{module}.py").write_text(textwrap.dedent(code), encoding="utf-8")
    return root


def cli(
    *args: str, project: Path | None = None, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``legato`` command and capture what it prints."""
    cmd = [LEGATO, *args]
    if project is not None:
        cmd += ["--project", str(project)]
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env)


def marks(path: Path) -> list[str]:
    """Lines appended by tasks to a marker file (one per execution)."""
    return path.read_text().split() if path.exists() else []


def wait_for(cond: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    """Poll ``cond`` until it holds; fail the test if it does not within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not met within {timeout:g}s")
        time.sleep(0.05)


def process_alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False
