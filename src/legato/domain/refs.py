"""Where a task's result is kept: the reference the driver records and the workers read."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ResultRef:
    """Where a task's result is stored and how to read it back.

    ``uri`` is None when nothing was stored (the task returned None).
    """

    uri: str | None
    format: str  # "none" | "pickle" | "parquet-pandas" | "parquet-polars" | "parquet-arrow"
