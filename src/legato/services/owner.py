"""Who drives a run: lease owner names, and telling whether a named owner is still alive."""

from __future__ import annotations

import os
import secrets
import socket


def _start_ticks(pid: int) -> str | None:
    # The process start time tells a live pid apart from a reused one.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        if fields[0] in ("Z", "X"):
            return None  # a zombie has stopped running; only its exit status is left
        return fields[19]
    except (OSError, IndexError):
        return None


def this_owner() -> str:
    """A lease owner name for this process: host, pid, process start time, a random tag."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid) or '0'}:{secrets.token_hex(3)}"


def _local_status(owner: str | None) -> str:
    """"dead" or "alive" for an owner of this host; "unknown" for another host or a bad name."""
    if not owner:
        return "dead"
    parts = owner.split(":")
    if len(parts) != 4 or parts[0] != socket.gethostname():
        return "unknown"
    try:
        pid = int(parts[1])
    except ValueError:
        return "unknown"
    ticks = _start_ticks(pid)
    if ticks is None or (parts[2] != "0" and ticks != parts[2]):
        return "dead"
    return "alive"


def owner_is_dead(owner: str | None) -> bool:
    """True only when the owner certainly ran on this host and its process is gone."""
    return _local_status(owner) == "dead"


def owner_is_alive_here(owner: str | None) -> bool:
    """True when the owner is a process of this host that is still running."""
    return _local_status(owner) == "alive"
