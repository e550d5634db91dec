"""SQLite's one scheduler seat as an OS file lock that outlives the store's own folder.

The seat is also a row in the store (``daemons``), but a user who deletes ``.legato/`` under
a running daemon deletes that row with it: a second daemon would then open a new file at the
same path and drive the same schedules. The lock file therefore lives outside the project,
in the runtime folder (``$XDG_RUNTIME_DIR``, else the temporary folder), named by a hash of
the database's absolute path. The kernel drops the lock when its holder exits, however it
ends, so a crashed daemon never leaves a stale seat behind.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import socket
import tempfile
from pathlib import Path


def lock_path(db_file: Path) -> Path:
    """The lock file of the SQLite database ``db_file``."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    digest = hashlib.sha256(os.path.realpath(db_file).encode()).hexdigest()[:20]
    return Path(base) / f"legato-seat-{digest}.lock"


class SeatLock:
    """An exclusive, non-blocking ``flock`` on the lock file of one SQLite database."""

    def __init__(self, db_file: Path) -> None:
        self.db_file = db_file
        self.path = lock_path(db_file)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> bool:
        """Take the lock; False (and nothing held) when another process holds it."""
        if self._fd is not None:
            return True
        # O_CLOEXEC: programs a task starts must not carry the seat on after this process.
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
        try:
            fd = os.open(self.path, flags, 0o644)
        except PermissionError:  # another user's lock file: locking it read-only still works
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        # Who holds it, for the message a refused daemon prints; the lock is what counts.
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        except OSError:
            pass
        return True

    def holder(self) -> str:
        """What the holder wrote in the lock file (``pid N on HOST``), or ``""``."""
        try:
            return self.path.read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            return ""

    def release(self) -> None:
        """Give the lock back (closing the file releases it)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)
