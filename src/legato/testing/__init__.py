"""Testing pipelines: run them in this process on a temporary store and look at what each
task did (its state, output, error, traceback and log), from plain tests or through the
pytest plugin's fixtures (``legato.testing.plugin``: ``legato_run``, ``legato_project``,
``legato_harness``); and ``build_context`` for calling a task's plain function alone.

A front end like the CLI: runs go through the services door as the local user.

    from legato.testing import run_pipeline

    def test_nightly() -> None:
        result = run_pipeline(nightly, params={"day": "2026-11-20"})
        assert result.succeeded
        assert result.output_of("clean") == [...]
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from legato.testing.context import build_context
    from legato.testing.harness import DEFAULT_TIMEOUT, Harness, RunTimeout, run_pipeline
    from legato.testing.result import (
        AttemptResult,
        NoOutput,
        PipelineResult,
        RunFailed,
        TaskResult,
        UnknownTask,
    )

# pytest imports this package for its plugin in every session where Legato is installed:
# the harness (and the settings reader it brings) is imported on first use only.
_HOMES = {
    "build_context": "legato.testing.context",
    "DEFAULT_TIMEOUT": "legato.testing.harness",
    "Harness": "legato.testing.harness",
    "RunTimeout": "legato.testing.harness",
    "run_pipeline": "legato.testing.harness",
    "AttemptResult": "legato.testing.result",
    "NoOutput": "legato.testing.result",
    "PipelineResult": "legato.testing.result",
    "RunFailed": "legato.testing.result",
    "TaskResult": "legato.testing.result",
    "UnknownTask": "legato.testing.result",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'legato.testing' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)


__all__ = [
    "DEFAULT_TIMEOUT",
    "AttemptResult",
    "Harness",
    "NoOutput",
    "PipelineResult",
    "RunFailed",
    "RunTimeout",
    "TaskResult",
    "UnknownTask",
    "build_context",
    "run_pipeline",
]
