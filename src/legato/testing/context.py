"""A task's context built by hand, for calling a task's plain function (``task.fn``) in a
unit test without a run."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from legato.definitions.context import Context
from legato.definitions.pipeline import Pipeline
from legato.definitions.task import Task


def build_context(
    task: Task | str = "task",
    *,
    pipeline: Pipeline | str = "pipeline",
    partition: str | None = None,
    params: Mapping[str, Any] | None = None,
    attempt: int = 1,
    run_id: str = "test-run",
    map_index: int | None = None,
    secrets: Mapping[str, str] | None = None,
    resources: Mapping[str, Any] | None = None,
) -> Context:
    """The Context a task's first parameter would get in a run, for ``task.fn(ctx, ...)``.

    Given a Pipeline with partitions, ``partition`` is checked against them and fills
    ``partition_keys``, ``window_start`` and ``window_end`` as a run would; ``ctx.log``
    logs to the logger a run's attempt log records (``legato.task.NAME``), so pytest's
    ``caplog`` sees it. ``resources`` are what ``ctx.resources`` hands out (given objects,
    never opened nor closed here).
    """
    from legato.resources.opened import OpenResources

    name = task.name if isinstance(task, Task) else task
    keys: Mapping[str, str] = {}
    start = end = None
    if isinstance(pipeline, Pipeline):
        parts = pipeline.automation.partitions
        if parts is not None and partition is not None:
            found = parts.get(partition)  # PartitionError: not one of the pipeline's
            partition, keys, start, end = found.key, dict(found.dims), found.start, found.end
    log = logging.getLogger(f"legato.task.{name}")
    if log.getEffectiveLevel() > logging.INFO:
        log.setLevel(logging.INFO)  # as in a run: ctx.log.info() is recorded
    return Context(
        run_id=run_id,
        pipeline=pipeline.name if isinstance(pipeline, Pipeline) else pipeline,
        task=name,
        attempt=attempt,
        partition=partition,
        params=dict(params or {}),
        log=log,
        map_index=map_index,
        partition_keys=keys,
        window_start=start,
        window_end=end,
        secrets=dict(secrets or {}),
        resources=OpenResources(overrides=dict(resources or {})),
    )


__all__ = ["build_context"]
