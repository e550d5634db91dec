"""Testing pipelines: run them in this process on a temporary store and look at what each
task did (its state, output, error, traceback and log), from plain tests or through the
pytest plugin's fixtures (``legato.testing.plugin``: ``legato_run``, ``legato_project``,
``legato_harness``).

A front end like the CLI: runs go through the services door as the local user.

    from legato.testing import run_pipeline

    def test_nightly() -> None:
        result = run_pipeline(nightly, params={"day": "2026-11-20"})
        assert result.succeeded
        assert result.output_of("clean") == [...]
"""

from legato.testing.harness import DEFAULT_TIMEOUT, Harness, RunTimeout, run_pipeline
from legato.testing.result import (
    AttemptResult,
    NoOutput,
    PipelineResult,
    RunFailed,
    TaskResult,
    UnknownTask,
)

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
    "run_pipeline",
]
