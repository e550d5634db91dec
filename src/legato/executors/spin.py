"""Watching a socket for a moment before blocking on it, only while that helps.

On a virtual machine a CPU that goes idle is halted, and waking it costs far more than a
short task: driver and workers watch their sockets for ~2 ms (``LEGATO_SPIN`` seconds)
before blocking, so that a chain of short tasks flows without paying that on every step.

When other processes want the CPUs, the spin does harm instead: the CPU it keeps is one the
peer (driver or worker) needs to produce what the spinner waits for, and a process that
never sleeps is not favoured by the kernel when its message comes (a woken one is). Under
two busy processes on two CPUs chain-1000 took 2-3x longer with the spin than without it
(bench/RESULTS.md, "Under CPU contention"). So a spin stops for a while once it sees that
the CPU is contended: it was preempted (its CPU time fell well behind the wall time), or
it ended without the message (the peer did not get to run in time).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

SPIN_SECONDS = float(os.environ.get("LEGATO_SPIN", "0.002"))
# How long to block without spinning after a spin saw contention. Long enough that the
# probes cost little (one spin per period), short enough to spin again soon after the
# machine is quiet.
BACKOFF_SECONDS = 0.25
# A spin that kept less than this share of its wall time on the CPU was preempted.
_MIN_CPU_SHARE = 0.5
# Spins shorter than this say nothing about preemption (the clocks' own cost).
_MIN_WALL = 0.0003


class Spinner:
    """Polls ``ready`` for up to ``seconds`` before the caller blocks; backs off while the
    CPUs are contended. One per thread that waits (it reads that thread's CPU time)."""

    def __init__(self, seconds: float = SPIN_SECONDS, backoff: float = BACKOFF_SECONDS) -> None:
        self.seconds = seconds
        self.backoff = backoff
        self._off_until = 0.0

    @property
    def spinning(self) -> bool:
        """Whether the next ``spin`` would spin (not backing off, not disabled)."""
        return self.seconds > 0 and time.monotonic() >= self._off_until

    def spin(
        self,
        ready: Callable[[], bool],
        limit: float | None = None,
        between: Callable[[], None] | None = None,
    ) -> bool:
        """Whether ``ready()`` became true within the spin (at most ``limit`` seconds);
        False at once while backing off. ``between`` runs after each poll (a yield)."""
        if self.seconds <= 0:
            return False
        start = time.monotonic()
        if start < self._off_until:
            return False
        cpu0 = time.thread_time()
        full = limit is None or limit >= self.seconds
        end = start + (self.seconds if full or limit is None else limit)
        found = False
        now = start
        while now < end:
            if ready():
                found = True
                break
            if between is not None:
                between()
            now = time.monotonic()
        wall = time.monotonic() - start
        if (not found and full) or (
            wall >= _MIN_WALL and time.thread_time() - cpu0 < wall * _MIN_CPU_SHARE
        ):
            self._off_until = start + wall + self.backoff
        return found
