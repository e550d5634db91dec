"""Partitions for ``@pipeline(partitions=...)``: time windows, static keys, or both."""

from legato.definitions.partitioning import (
    MultiPartitions,
    Partition,
    PartitionError,
    PartitionSet,
    StaticPartitions,
    TimeWindows,
    daily,
    hourly,
    monthly,
    multi,
    static,
    weekly,
)

__all__ = [
    "MultiPartitions",
    "Partition",
    "PartitionError",
    "PartitionSet",
    "StaticPartitions",
    "TimeWindows",
    "daily",
    "hourly",
    "monthly",
    "multi",
    "static",
    "weekly",
]
