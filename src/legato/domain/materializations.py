"""Materializations of assets as the store keeps them: one per asset a task produced, per
successful attempt, for the run's partition, with the output's metadata."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

#: Key of ``AttemptOutcome.extra`` holding the metadata of a task's output, computed in the
#: worker for a task that produces assets (``legato.executors.asset_metadata``).
ASSET_METADATA = "asset_metadata"


@dataclass(frozen=True, slots=True)
class NewMaterialization:
    """A materialization to record; the store assigns its id."""

    asset: str
    partition: str | None
    pipeline: str
    run_id: str
    task_key: str
    at: datetime
    metadata: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Materialization:
    """A recorded materialization of ``asset``.

    ``metadata`` holds ``rows``, ``columns`` (name and type), ``bytes`` (``bytes_exact``
    says whether that is the stored result's size or an estimate of the value in memory),
    ``preview`` (a few rows, long values cut, secrets masked) where the output has them, and
    ``values``: what the task added with ``ctx.add_metadata``.
    """

    id: int
    asset: str
    partition: str | None
    pipeline: str
    run_id: str
    task_key: str
    at: datetime
    metadata: dict[str, Any]

    @property
    def rows(self) -> int | None:
        """The output's row count, when known."""
        value = self.metadata.get("rows")
        return value if isinstance(value, int) else None


@dataclass(frozen=True, slots=True)
class AssetCounts:
    """How often an asset was materialized, and in how many partitions."""

    asset: str
    materializations: int
    partitions: int
