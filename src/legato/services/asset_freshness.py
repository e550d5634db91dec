"""Whether an asset is fresh under its own policy, at a given ``now``.

An asset's policy (``Asset.freshness``) is the most it may lag. For an asset partitioned by
time windows (its producing pipeline's partitions), the partitions it must have are those of
the newest window that closed at least ``freshness`` before ``now`` (every static key of that
window for a two-dimensional set): one missing makes the asset stale, and is named. Only that
newest due window is looked at, never the whole history: an older gap is a backfill's matter,
and judging 10,000 assets stays one indexed probe per asset. For an asset without time
windows (none, or static keys only), its newest materialization must be younger than
``freshness``.

The states form a small fixed set:

- ``fresh``: everything due is there;
- ``stale``: something due is missing or too old, and ``why`` says what;
- ``never``: no materialization yet and nothing nameable is late (an asset without time
  windows that was never made: there is no time to count its lag from);
- ``none``: the asset has no policy.

Pure: the materializations come in as arguments (``due_partitions`` says which to look up).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from legato.definitions.partitioning import Partition, PartitionSet

__all__ = ["FRESHNESS_STATES", "Freshness", "FreshnessState", "due_partitions", "judge"]

FreshnessState = Literal["fresh", "stale", "never", "none"]
#: Every state, in the order a list shows them worst first.
FRESHNESS_STATES: tuple[FreshnessState, ...] = ("stale", "never", "fresh", "none")


@dataclass(frozen=True)
class Freshness:
    """An asset's freshness at ``at``: its state, why when stale, the partitions due and not
    materialized (``missing``), and since when it is late (``late_since``: when the missing
    partition's lag ran out, or when the newest materialization's did)."""

    state: FreshnessState
    why: str | None = None
    missing: tuple[str, ...] = ()
    late_since: datetime | None = None

    @property
    def stale(self) -> bool:
        return self.state == "stale"


NO_POLICY = Freshness("none")


def due_partitions(
    partitions: PartitionSet | None, lag: timedelta | None, now: datetime
) -> list[Partition]:
    """The partitions an asset with these time ``partitions`` and policy ``lag`` must have at
    ``now``: those of the newest window closed ``lag`` ago (none without time windows)."""
    if lag is None or partitions is None or partitions.time_dimension is None:
        return []
    return partitions.for_tick(now - lag)


def _ago(delta: timedelta) -> str:
    seconds = max(int(delta.total_seconds()), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min" if minutes else f"{seconds} s"


def judge(
    *,
    lag: timedelta | None,
    partitions: PartitionSet | None,
    now: datetime,
    newest_at: datetime | None,
    present: Collection[str] = (),
    due: list[Partition] | None = None,
) -> Freshness:
    """The freshness at ``now`` of an asset with policy ``lag``, time ``partitions`` (its
    producing pipeline's), newest materialization at ``newest_at``, and ``present``: which
    of its ``due_partitions`` have a materialization (``due``: those, when the caller has
    them already: many assets share one partition set)."""
    if lag is None:
        return NO_POLICY
    now = now.astimezone(UTC)
    if partitions is not None and partitions.time_dimension is not None:
        if due is None:
            due = due_partitions(partitions, lag, now)
        missing = [p for p in due if p.key not in present]
        if missing:
            end = missing[0].end
            assert end is not None  # time windows have ends
            closed = now - end.astimezone(UTC)
            names = ", ".join(p.key for p in missing[:3]) + (
                f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            )
            what = "partition" if len(missing) == 1 else "partitions"
            return Freshness(
                "stale",
                f"{what} {names} not materialized {_ago(closed)} after "
                f"{'its' if len(missing) == 1 else 'their'} window closed (allowed {_ago(lag)})",
                tuple(p.key for p in missing),
                end.astimezone(UTC) + lag,
            )
        return Freshness("never") if newest_at is None else Freshness("fresh")
    if newest_at is None:
        return Freshness("never")
    age = now - newest_at.astimezone(UTC)
    if age > lag:
        return Freshness(
            "stale",
            f"last materialized {_ago(age)} ago (allowed {_ago(lag)})",
            late_since=newest_at.astimezone(UTC) + lag,
        )
    return Freshness("fresh")
