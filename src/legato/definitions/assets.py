"""Assets: the named data products tasks produce and read.

``@task(produces="warehouse.daily_sales", consumes=["shop.orders"])`` names them by key, or
with ``Asset`` objects that carry a description, an owner, tags and a freshness policy. The
asset graph across pipelines follows from these declarations alone: an asset's producers are
the tasks that produce it, its downstream the tasks (and through them the assets) that
consume it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from legato.definitions.durations import parse_duration

__all__ = ["Asset", "asset_of", "assets_of"]

# Dotted names of letters, digits, "_" and "-": "warehouse.daily_sales", "shop.orders".
_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-]*(\.[A-Za-z0-9_][A-Za-z0-9_\-]*)*")
_MAX_KEY = 200


@dataclass(frozen=True)
class Asset:
    """A data product, known by its ``key`` ("warehouse.daily_sales").

    ``freshness`` is the most an asset may lag: for a partitioned asset, how long after a
    partition's window closes its materialization may come; for one without partitions,
    how long after its last materialization it is stale.
    """

    key: str
    description: str | None = None
    owner: str | None = None
    tags: tuple[str, ...] = ()
    freshness: timedelta | None = None  # "6h" or seconds are taken too

    def __post_init__(self) -> None:
        if self.freshness is not None and not isinstance(self.freshness, timedelta):
            # "6h" or seconds, as everywhere else a duration is given; kept as a timedelta.
            lag = parse_duration(self.freshness, field=f"asset {self.key!r} freshness")
            object.__setattr__(
                self, "freshness", None if lag is None else timedelta(seconds=lag)
            )
        if self.freshness is not None and self.freshness <= timedelta(0):
            raise ValueError(f"asset {self.key!r}: freshness must be a positive duration")
        if not isinstance(self.key, str) or not _KEY.fullmatch(self.key):
            raise ValueError(
                f"asset key {self.key!r}: use dotted names of letters, digits, '_' and '-', "
                'e.g. "warehouse.daily_sales"'
            )
        if len(self.key) > _MAX_KEY:
            raise ValueError(f"asset key {self.key[:40]!r}...: at most {_MAX_KEY} characters")
        object.__setattr__(self, "tags", tuple(self.tags))


def asset_of(value: str | Asset, *, freshness: str | float | timedelta | None = None) -> Asset:
    """``value`` as an Asset (a key makes a bare one)."""
    if isinstance(value, Asset):
        return value
    if not isinstance(value, str):
        raise TypeError(f"an asset is a key (str) or an Asset, got {value!r}")
    lag = parse_duration(freshness, field="freshness")
    return Asset(value, freshness=None if lag is None else timedelta(seconds=lag))


def assets_of(value: str | Asset | Iterable[str | Asset] | None) -> tuple[Asset, ...]:
    """One asset, or several, or none, as a tuple without repeats (by key)."""
    if value is None:
        return ()
    items = [value] if isinstance(value, str | Asset) else list(value)
    out: dict[str, Asset] = {}
    for item in items:
        found = asset_of(item)
        if found.key in out and out[found.key] != found:
            raise ValueError(f"asset {found.key!r} is declared twice, differently")
        out[found.key] = found
    return tuple(out.values())
