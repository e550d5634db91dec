"""Human durations such as "30s", "10m" or "1h30m", as seconds."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration(
    value: str | float | timedelta | None, *, field: str = "duration"
) -> float | None:
    """Seconds from a number, a timedelta or a string like "90s", "10m", "1h30m"."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise ValueError(f"{field}: expected a duration, got {value!r}")
    elif isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        pos, seconds = 0, 0.0
        for match in _PART.finditer(text):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNITS[match.group(2)]
            pos = match.end()
        if pos != len(text) or not text:
            raise ValueError(
                f"{field}: cannot read {value!r} as a duration (use e.g. 30s, 10m, 1h30m, 2d)"
            )
    else:
        raise ValueError(f"{field}: expected a duration, got {type(value).__name__}")
    if seconds < 0:
        raise ValueError(f"{field}: must not be negative, got {value!r}")
    return seconds
