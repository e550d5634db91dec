"""The retail example's own tests (examples/retail_orders/tests), which use the pytest
plugin, pass when run as their README says: ``pytest examples/retail_orders/tests``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.testing.subprocess_pytest import run_pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_retail_examples_tests_pass(tmp_path: Path) -> None:
    out = run_pytest(
        ["--basetemp", str(tmp_path / "basetemp"), "examples/retail_orders/tests"], cwd=ROOT
    )
    assert " passed in " in out and "failed" not in out and "skipped" not in out, out
