"""Run ids that sort by creation time."""

from __future__ import annotations

import functools
import random
import secrets
import threading
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


_lock = threading.Lock()
_last = (-1, 0)  # the millisecond and random part of this process's last id


def new_run_id(now: datetime, rng: random.Random | None = None) -> str:
    """A new run id: 12 hex digits of milliseconds since the epoch + 8 random hex digits.

    Ids therefore sort by creation time (to the millisecond), which ``BrowseStore.list_runs``
    and "a pipeline's newest run" rely on. Within one millisecond, the ids one process makes
    still sort in the order made: the random part of the next one is greater (a backfill
    makes dozens of runs a millisecond). Pass ``rng`` for reproducible ids in tests.
    """
    global _last
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("new_run_id needs a timezone-aware datetime")
    millis = (now - _EPOCH) // timedelta(milliseconds=1)
    if not 0 <= millis < 16**12:
        raise ValueError(f"time {now.isoformat()} is outside the range run ids can encode")
    if rng is not None:
        return f"{millis:012x}{rng.getrandbits(32):08x}"
    with _lock:
        rand = secrets.randbits(32)
        if millis == _last[0]:
            # Past the last one by a random step; should that overflow, the id is random.
            after = _last[1] + 1 + secrets.randbits(16)
            rand = after if after < 2**32 else rand
        _last = (millis, rand)
    return f"{millis:012x}{rand:08x}"


@functools.lru_cache(maxsize=64)  # a run's every attempt asks (20,000 times in a big fan)
def run_folder(run_id: str) -> str:
    """The folder a run's logs and results go in, relative to their roots:
    ``YYYY/MM/DD/<run id>`` by the day (UTC) the id was made, so that no folder holds more
    than a day's runs however long a store lives. An id not made by ``new_run_id`` keeps a
    folder of its own at the root."""
    if len(run_id) != 20:
        return run_id
    try:
        millis = int(run_id[:12], 16)
    except ValueError:
        return run_id
    return f"{_EPOCH + timedelta(milliseconds=millis):%Y/%m/%d}/{run_id}"
