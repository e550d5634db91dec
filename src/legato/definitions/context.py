"""The context a task may ask for by naming its first parameter ``ctx`` (or typing it Context)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Context:
    """What a running task knows about itself.

    ``log`` is a logger whose records go to this attempt's log, like print() output does.
    """

    run_id: str
    pipeline: str
    task: str
    attempt: int
    partition: str | None
    params: Mapping[str, Any]
    log: logging.Logger
    map_index: int | None = None
