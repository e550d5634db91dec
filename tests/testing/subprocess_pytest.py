"""A real ``pytest`` in a subprocess, as a user runs it: the plugin found by its entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path


def run_pytest(
    args: Sequence[str], *, cwd: Path, pythonpath: Path | None = None, timeout: float = 240
) -> str:
    """Run ``python -m pytest ARGS`` in ``cwd`` (no cache, no bytecode written), without this
    session's PYTEST_* and LEGATO_* variables; its output, stdout then stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "LEGATO_"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done.stdout + done.stderr
