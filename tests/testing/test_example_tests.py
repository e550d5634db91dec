"""The retail example's own tests (examples/retail_orders/tests), which use the pytest
plugin, pass when run as their README says: ``pytest examples/retail_orders/tests``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_retail_examples_tests_pass(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "LEGATO_"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # nothing written into the checkout
    done = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
            "--basetemp", str(tmp_path / "basetemp"), "examples/retail_orders/tests",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert " passed" in out and "failed" not in out and "skipped" not in out, out
