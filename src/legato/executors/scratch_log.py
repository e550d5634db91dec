"""Attempt logs made only when there is something in them.

Creating a file is the dearest part of a short attempt: the inode and the directory entry
cost 0.1-0.6 ms on this kind of virtual disk (bench/RESULTS.md, "Lazy log files"), more
than running a no-op task. Most attempts print nothing. So a worker process writes each
attempt's output to a scratch file of its own, kept in ``<logs>/.workers/``, and gives it
the attempt's name (a hard link: the directory entry only) when the attempt ends with
something in it, or as soon as it has run for ``PUBLISH_AFTER`` seconds, so that a long
attempt's log can be followed while it runs. An attempt that printed nothing leaves no
file; readers take a missing log as an empty one. The scratch file then serves the next
attempt as it is.

A worker killed or dead in the middle of an attempt cannot publish: its driver does it
(``salvage``), before it writes its own note at the log's end. If the whole process tree
dies (the driver killed), the output of an attempt younger than ``PUBLISH_AFTER`` stays in
the scratch file; the next worker of that host and process id, or the first of a later
driver that looks, removes it.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from contextlib import suppress

from legato.security.files import open_private, private_dirs

#: Seconds after which a running attempt's log is given its name (followable while it runs).
PUBLISH_AFTER = float(os.environ.get("LEGATO_LOG_PUBLISH_AFTER", "0.1"))
SCRATCH_FOLDER = ".workers"


def scratch_path(log_path: str, pid: int) -> str:
    """The scratch file of worker ``pid`` for logs laid out as ``<logs>/<run>/<file>``."""
    logs = os.path.dirname(os.path.dirname(log_path))
    return os.path.join(logs, SCRATCH_FOLDER, f"{socket.gethostname()}-{pid}.log")


def _publish(scratch: str, log_path: str) -> None:
    """Give ``scratch``'s file the name ``log_path`` too (the run's folder made if needed).

    If ``log_path`` exists already as another file, the scratch's content is appended to it.
    """
    try:
        os.link(scratch, log_path)
        return
    except FileNotFoundError:
        if not os.path.exists(scratch):
            raise
        private_dirs(os.path.dirname(log_path))
        try:
            os.link(scratch, log_path)
            return
        except FileExistsError:
            pass
    except FileExistsError:
        pass
    if os.path.samefile(scratch, log_path):
        return
    with open(scratch, "rb") as src:
        data = src.read()
    fd = open_private(log_path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def salvage(log_path: str, pid: int) -> None:
    """What worker ``pid``, killed or dead, wrote for the attempt logging to ``log_path``:
    published under that name (unless it was already), and its scratch file removed."""
    scratch = scratch_path(log_path, pid)
    with suppress(FileNotFoundError):
        if os.stat(scratch).st_size > 0 or os.stat(scratch).st_nlink > 1:
            _publish(scratch, log_path)
        os.unlink(scratch)


def _sweep(folder: str) -> None:
    """Remove the scratch files of this host's processes that are gone (a process tree
    killed whole leaves its workers' files behind)."""
    prefix = f"{socket.gethostname()}-"
    with suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            name = entry.name
            pid = name[len(prefix) : -len(".log")]
            if not (name.startswith(prefix) and name.endswith(".log") and pid.isdigit()):
                continue
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                with suppress(OSError):
                    os.unlink(entry.path)
            except OSError:
                pass  # alive, another user's


class _Live:
    """The attempt writing to the scratch file now."""

    __slots__ = ("deadline", "log_path", "published")

    def __init__(self, log_path: str, deadline: float) -> None:
        self.log_path = log_path
        self.deadline = deadline
        self.published = False


class ScratchLogs:
    """A worker process's scratch log file, and the thread publishing long attempts' logs.

    Used by one thread at a time (the worker's); the publishing thread starts at first use.
    """

    def __init__(self, publish_after: float | None = None) -> None:
        # Read when made (in the worker), not at import: the zygote imports this module.
        self.publish_after = (
            float(os.environ.get("LEGATO_LOG_PUBLISH_AFTER", PUBLISH_AFTER))
            if publish_after is None
            else publish_after
        )
        self._fd = -1
        self._path = ""
        self._pid = 0
        self._live: _Live | None = None
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._idle = False
        self._thread: threading.Thread | None = None
        self._swept = False
        self._spent = False  # the file was given to an attempt: no longer a scratch file

    def begin(self, log_path: str) -> int:
        """The descriptor an attempt logging to ``log_path`` writes to (empty, appending).

        Raises OSError when no scratch file can be made: the caller opens the log itself.
        """
        fd = self._scratch(log_path)
        live = _Live(log_path, time.monotonic() + self.publish_after)
        with self._lock:
            self._live = live
            if self._thread is None or self._thread.ident is None or self._pid != os.getpid():
                self._start_thread()
            elif self._idle:
                self._wake.notify()
        return fd

    def end(self) -> None:
        """The attempt is over: its log published if it holds anything, the scratch file
        kept for the next attempt if it does not. The descriptor stays valid until the next
        ``begin`` (it may still be read, or masked through the log's name)."""
        with self._lock:
            live, self._live = self._live, None
            if live is None:
                return
            published = live.published
        if not published and os.fstat(self._fd).st_size == 0:
            return
        # The file is the attempt's now (even empty, once published): the next attempt gets
        # a new scratch file.
        self._spent = True
        if not published:
            _publish(self._path, live.log_path)
        with suppress(FileNotFoundError):
            os.unlink(self._path)

    def close(self) -> None:
        """Remove the scratch file (the worker is leaving; no attempt runs)."""
        if self._fd >= 0:
            with suppress(OSError):
                if os.fstat(self._fd).st_nlink == 1:
                    os.unlink(self._path)
            os.close(self._fd)
            self._fd = -1

    # -- internals -----------------------------------------------------------------------

    def _scratch(self, log_path: str) -> int:
        path = scratch_path(log_path, os.getpid())
        if self._fd >= 0:
            st = os.fstat(self._fd)
            if path == self._path and not self._spent and st.st_nlink == 1 and st.st_size == 0:
                return self._fd
            os.close(self._fd)  # used (published), or another logs folder
            self._fd = -1
        folder = os.path.dirname(path)
        private_dirs(folder)  # 0700 whatever the umask, as every folder of logs
        if not self._swept:
            self._swept = True
            _sweep(folder)
        with suppress(FileNotFoundError):
            os.unlink(path)  # left by a dead process with our id: not ours to append to
        # Readable: capping the log reads its tail back (cap_log).
        fd = open_private(path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC | os.O_EXCL)
        self._fd, self._path, self._spent = fd, path, False
        return fd

    def _start_thread(self) -> None:
        # After a fork the thread of the parent is gone: one per process.
        self._pid = os.getpid()
        self._idle = False
        self._thread = threading.Thread(
            target=self._publisher, name="legato-log-publisher", daemon=True
        )
        self._thread.start()

    def _publisher(self) -> None:
        with self._lock:
            while True:
                live = self._live
                if live is None or live.published:
                    self._idle = True
                    self._wake.wait()
                    self._idle = False
                    continue
                left = live.deadline - time.monotonic()
                if left > 0:
                    self._wake.wait(left)
                    continue
                # Under the lock: the attempt cannot end (and its scratch be reused) meanwhile.
                try:
                    _publish(self._path, live.log_path)
                except OSError:
                    live.deadline = time.monotonic() + 1.0  # a full volume: try again later
                else:
                    live.published = True
