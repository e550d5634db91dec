"""What a backfill looks like to the people reading it: its progress, its partitions as
ranges and named keys (never one entry per key of a ten-year range), and its keys a page at a
time with the state of each key's run.

The keys come from the pipeline's partitions (``PartitionSet.range_slice``), worked out for
the page asked for; so do the first and last key of each range.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from legato.definitions.partitioning import PartitionError
from legato.domain.states import RunState
from legato.services.partition_views import KeyRange

if TYPE_CHECKING:
    from legato.definitions.partitioning import PartitionSet
    from legato.domain.backfill_keys import BackfillKeys, Resolver
    from legato.domain.records import BackfillRecord

#: Ranges and named keys a view shows at most; the rest are counted in ``left_off``.
SHOWN = 100
MAX_KEYS_PAGE = 1000
NOT_STARTED = "not started"


@dataclass(frozen=True)
class BackfillView:
    """A backfill with its progress and its partitions as ranges and named keys."""

    record: BackfillRecord
    runs: dict[str, int]  # run state -> count
    ranges: tuple[KeyRange, ...] = ()  # the first SHOWN of them
    keys: tuple[str, ...] = ()  # named keys, the first SHOWN of them
    left_off: int = 0  # ranges and named keys not shown

    @property
    def done(self) -> int:
        return sum(n for s, n in self.runs.items() if RunState(s).finished)

    @property
    def total(self) -> int:
        return self.record.keys.total

    @property
    def not_started(self) -> int:
        return max(0, self.total - self.record.next_index)

    @property
    def first(self) -> str:
        """The first partition, for a one-line description."""
        return self.ranges[0].first if self.ranges else (self.keys[0] if self.keys else "")

    @property
    def last(self) -> str:
        """The last partition shown, for a one-line description."""
        return self.keys[-1] if self.keys else (self.ranges[-1].last if self.ranges else "")


@dataclass(frozen=True)
class BackfillKey:
    """One partition of a backfill and its run (the newest the backfill made for it)."""

    key: str
    state: str  # a run state, or "not started"
    run_id: str | None


@dataclass(frozen=True)
class BackfillKeysPage:
    """A backfill's keys ``offset``.. in the order its runs are made; ``next_offset`` is None
    on the last page."""

    keys: tuple[BackfillKey, ...]
    total: int
    next_offset: int | None


def resolver(parts: PartitionSet | None, now: datetime) -> Resolver:
    """Keys of a span's range from ``parts``; without them (the pipeline lost its partitions)
    only the range's ends are known."""
    if parts is None:
        return lambda first, last, start, stop: []
    return lambda first, last, start, stop: parts.range_slice(first, last, start, stop, now)


def view(
    record: BackfillRecord, runs: dict[str, int], parts: PartitionSet | None, now: datetime
) -> BackfillView:
    """The backfill with its ranges' first and last keys worked out."""
    resolve = resolver(parts, now)
    ranges: list[KeyRange] = []
    named: list[str] = []
    spans = record.keys.spans
    for span in spans[:SHOWN]:
        if span.named:
            named.append(span.first)
            continue
        try:
            ends = span.keys(resolve, 0, 1) + span.keys(resolve, span.count - 1, span.count)
        except PartitionError:
            ends = []
        first, last = ends if len(ends) == 2 else (span.first, span.last)
        ranges.append(KeyRange(first, last, span.count))
    return BackfillView(record, runs, tuple(ranges), tuple(named), max(0, len(spans) - SHOWN))


def keys_page(
    keys: BackfillKeys, parts: PartitionSet | None, now: datetime, offset: int, limit: int
) -> list[str]:
    """Keys ``offset``..``offset + limit - 1`` of a backfill; PartitionError when the
    pipeline's partitions no longer hold them."""
    return keys.keys(resolver(parts, now), offset, offset + limit)
