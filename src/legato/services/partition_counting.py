"""Counting a time set's partitions by state in the database, per bucket of key text.

One dimension of time partitions has keys whose text sorts as their windows do and starts
with each window's year, month, day and hour ("2026-03-01T05:00+00:00"). Then a window of
keys is a range of text and a bucket a prefix of it. The keys themselves (kept by the
partition set) give each bucket's size and ends; the kept status, read by index ranges,
gives how many partitions of each month ran and which did not succeed; those of a bucket
that neither never ran nor are among those, succeeded. At 10^5 partitions a few thousand
rows are read, not 10^5.

This rests on the status holding only keys of the set, as runs are created for keys it
names; a definition changed under old runs (another time zone: other keys between these)
breaks it. So each process reads a pipeline's status whole once per set and counts here
only if every row is a key (``only_keys``); else, or where a bucket counts more rows than
keys, the caller counts key by key.

Status rows are never deleted (retention keeps each partition's newest run), so a month
whose every key had a run stays so: each process remembers such months and counts only the
others again (on PostgreSQL, counting 10^5 index entries month by month took 20 ms of a
summary's 50).
"""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

from legato.domain.states import RunState

if TYPE_CHECKING:
    from legato.definitions.partitioning import PartitionSet
    from legato.store.backfill_store import BackfillStore

NEVER_RUN = "never run"
#: Characters of a key naming its year, month, day, hour.
LABEL_LENGTH = {"year": 4, "month": 7, "day": 10, "hour": 13}
#: The finest label each unit's keys spell out at their start.
UNIT_LABEL = {"hourly": "hour", "daily": "day", "weekly": "day", "monthly": "month"}
#: Missing partitions are found by month: months with all their keys present are skipped.
_MONTH = LABEL_LENGTH["month"]

_ORDER_LOCK = threading.Lock()
#: Per partition set, how many of its keys were checked and whether they sort as text.
_ORDERED: dict[PartitionSet, tuple[int, bool]] = {}

#: Per store, pipeline and partition set, whether its status rows were all keys when read.
_ONLY_KEYS: WeakKeyDictionary[BackfillStore, dict[tuple[str, PartitionSet], bool]] = (
    WeakKeyDictionary()
)


#: Per store, the (pipeline, first key, last key, keys) ranges seen to have a run for every
#: key; at most _COMPLETE_MAX per store, forgotten all at once past that.
_COMPLETE: WeakKeyDictionary[BackfillStore, set[tuple[str, str, str, int]]] = (
    WeakKeyDictionary()
)
_COMPLETE_MAX = 100_000


@dataclass(frozen=True)
class Span:
    """Keys ``lo`` to ``hi - 1`` of a window sharing one label, and their counts by state."""

    label: str
    lo: int
    hi: int
    counts: dict[str, int]


def text_ordered(parts: PartitionSet, keys: Sequence[str]) -> bool:
    """Whether ``keys`` (the set's keys now, growing only at the end) strictly increase as
    text; checked once per set and then only for keys new since."""
    if len(parts.dimensions) != 1 or parts.time_dimension is None:
        return False
    with _ORDER_LOCK:
        seen, ok = _ORDERED.get(parts, (0, True))
        if ok and len(keys) > seen:
            ok = all(a < b for a, b in pairwise(keys[max(0, seen - 1) :]))
            _ORDERED[parts] = (len(keys), ok)
        return ok


def only_keys(
    backfills: BackfillStore, pipeline: str, parts: PartitionSet, keys: Sequence[str]
) -> bool:
    """Whether each status row of ``pipeline`` is one of ``keys`` (the set's keys now):
    read once per process and set, as later rows come from runs of keys of this set."""
    with _ORDER_LOCK:
        known = _ONLY_KEYS.setdefault(backfills, {}).get((pipeline, parts))
    if known is None:
        known = set(backfills.partition_states(pipeline)) <= set(keys)
        with _ORDER_LOCK:
            _ONLY_KEYS[backfills][(pipeline, parts)] = known
    return known


def prefix_length(parts: PartitionSet, granularity: str | None) -> int | None:
    """How many characters of a key name its ``granularity`` bucket (0 for no granularity)
    when the keys spell that bucket and their month out at their start; None otherwise."""
    time_dim = parts.time_dimension
    if time_dim is None or len(parts.dimensions) != 1:
        return None
    length = LABEL_LENGTH[granularity] if granularity else 0
    finest = LABEL_LENGTH[UNIT_LABEL[time_dim.unit]]
    return length if finest >= max(length, _MONTH) else None


def spans(
    keys: Sequence[str], label: Callable[[str], str], lo: int = 0, hi: int | None = None
) -> list[tuple[str, int, int]]:
    """(label, first index, end index) of each run of keys sharing a label, keys being in
    label order: each run's end found by bisection, a few hundred label reads for 10^5."""
    out, end = [], len(keys) if hi is None else hi
    while lo < end:
        name = label(keys[lo])
        stop = bisect_right(keys, name, lo=lo, hi=end, key=label)
        out.append((name, lo, stop))
        lo = stop
    return out


@dataclass(frozen=True)
class Counted:
    """Counts by state per label of a window's keys, and where (indexes in the keys) the
    partitions in each state but succeeded are."""

    spans: tuple[Span, ...]
    at: dict[str, list[int]]


def counted(
    backfills: BackfillStore, pipeline: str, keys: Sequence[str], length: int
) -> Counted | None:
    """Counts by state of each ``length``-character label of ``keys`` (a window of a set
    whose keys sort as text, start with such labels and name their month), with where the
    partitions in each state but succeeded are; None if the status holds rows that are no
    keys here.

    What the database is asked: how many partitions have a run per month (a primary-key
    range each), which those are only in months where some never ran, and the partitions
    whose newest run did not succeed (the state index). Rows read grow with the partitions
    that did not succeed, never with all of them; the rest succeeded."""
    if not keys:
        return Counted((), {})
    months = spans(keys, lambda k: k[:_MONTH])
    ran = _present(backfills, pipeline, [(keys[lo], keys[hi - 1], hi - lo) for _, lo, hi in months])
    if ran is None:
        return None
    others = [s.value for s in RunState if s is not RunState.SUCCEEDED]
    at: dict[str, list[int]] = {}
    for key, (state, _) in backfills.partitions_between(
        pipeline, keys[0], keys[-1], others
    ).items():
        i = bisect_left(keys, key)
        if i < len(keys) and keys[i] == key:
            at.setdefault(state, []).append(i)
    for found in at.values():
        found.sort()
    short = [(lo, hi) for (_, lo, hi), n in zip(months, ran, strict=True) if n < hi - lo]
    at[NEVER_RUN] = _missing(backfills, pipeline, keys, short, len(months))
    out = []
    for name, lo, hi in spans(keys, lambda k: k[:length]):
        counts = {}
        for state, found in at.items():
            n = bisect_left(found, hi) - bisect_left(found, lo)
            if n:
                counts[state] = n
        rest = (hi - lo) - sum(counts.values())
        if rest < 0:
            return None
        if rest:
            counts[RunState.SUCCEEDED.value] = rest
        out.append(Span(name, lo, hi, counts))
    return Counted(tuple(out), at)


def _present(
    backfills: BackfillStore, pipeline: str, months: list[tuple[str, str, int]]
) -> list[int] | None:
    """How many partitions have a run in each month (first key, last key, keys), counting
    only months not yet seen complete; None if one counts more runs than keys."""
    with _ORDER_LOCK:
        complete = _COMPLETE.setdefault(backfills, set())
        ask = [i for i, m in enumerate(months) if (pipeline, *m) not in complete]
    ran = [size for _, _, size in months]
    found = backfills.partitions_present(pipeline, [months[i][:2] for i in ask]) if ask else []
    seen = []
    for i, n in zip(ask, found, strict=True):
        if n > months[i][2]:
            return None
        ran[i] = n
        if n == months[i][2]:
            seen.append((pipeline, *months[i]))
    with _ORDER_LOCK:
        if len(complete) + len(seen) > _COMPLETE_MAX:
            complete.clear()
        complete.update(seen)
    return ran


def _missing(
    backfills: BackfillStore,
    pipeline: str,
    keys: Sequence[str],
    short: list[tuple[int, int]],
    months: int,
) -> list[int]:
    """Indexes in ``keys`` of the partitions that never ran, looked for only in the months
    (``lo``, ``hi`` indexes) counting fewer runs than keys."""
    if len(short) > months // 2:  # most months: one range of them all
        short = [(0, len(keys))]
    if not short:
        return []
    there = backfills.partitions_among(pipeline, [(keys[lo], keys[hi - 1]) for lo, hi in short])
    return [i for lo, hi in short for i in range(lo, hi) if keys[i] not in there]


def positions_in(keys: Sequence[str], found: Iterable[str]) -> list[int]:
    """Sorted indexes in ``keys`` (sorted as text) of the keys of ``found`` that are keys."""
    out = []
    for key in found:
        i = bisect_left(keys, key)
        if i < len(keys) and keys[i] == key:
            out.append(i)
    return sorted(out)
