"""The context a task may ask for by naming its first parameter ``ctx`` (or typing it Context)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from legato.definitions.cursors import Cursors, NoCursors
from legato.definitions.resource_param import NoResources, Resources

#: Bytes (as JSON) a task may add to its materializations with ``Context.add_metadata``.
MAX_ADDED_METADATA = 16_384


@dataclass(frozen=True)
class Context:
    """What a running task knows about itself.

    ``log`` is a logger whose records go to this attempt's log, like print() output does.
    ``partition`` is the run's partition key; ``partition_keys`` its part per dimension (e.g.
    ``{"date": "2026-11-20", "region": "eu"}``) and ``window_start``/``window_end`` the time
    window it covers (aware datetimes in the partitions' time zone; the end is exclusive).
    ``secrets["NAME"]`` is the value of a secret set with ``legato secrets set NAME``; each
    value read is masked (``****``) in the attempt's log and error.
    ``resources.NAME`` (or ``resources["NAME"]``) is the client of legato.toml's
    ``[resources.NAME]``, opened on first use in this worker process and reused by the tasks
    it runs (docs/resources.md).
    ``cursors.window(name, high=...)`` is the ``(low, high]`` range of an incremental read,
    kept in the store so that a retry, a resume or a re-run of the partition reads the same.
    ``add_metadata(**values)`` adds values to the materializations of the assets the task
    produces (docs/guide.md, "Assets").
    """

    run_id: str
    pipeline: str
    task: str
    attempt: int
    partition: str | None
    params: Mapping[str, Any]
    log: logging.Logger
    map_index: int | None = None
    partition_keys: Mapping[str, str] = field(default_factory=dict)
    window_start: datetime | None = None
    window_end: datetime | None = None
    #: The project's secrets by name, read (and audited) on first use (docs/security.md).
    secrets: Mapping[str, str] = field(default_factory=dict)
    #: The project's resources by name, opened on first use (docs/resources.md).
    resources: Resources = field(default_factory=NoResources)
    #: Windows of incremental reads kept in the store (legato.definitions.cursors).
    cursors: Cursors = field(default_factory=NoCursors)
    #: What ``add_metadata`` was given, for the worker to record with the task's assets.
    added_metadata: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def add_metadata(self, **values: Any) -> None:
        """Record ``values`` (JSON: numbers, text, booleans, None, lists, dicts) with the
        materializations of the assets this task produces, e.g.
        ``ctx.add_metadata(source="s3://drop/orders.csv", late_rows=3)``. A later call
        replaces a name given before; all of them together may take at most
        ``MAX_ADDED_METADATA`` bytes as JSON."""
        merged = {**self.added_metadata, **values}
        try:
            size = len(json.dumps(merged, allow_nan=False, ensure_ascii=False).encode())
        except (TypeError, ValueError) as exc:
            raise ValueError(f"add_metadata takes JSON values only: {exc}") from None
        if size > MAX_ADDED_METADATA:
            raise ValueError(
                f"add_metadata: {size} bytes of metadata, more than the "
                f"{MAX_ADDED_METADATA} a task may add: keep figures here, data in the output"
            )
        self.added_metadata.update(values)
