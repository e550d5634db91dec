"""Sending an attempt's stdout, stderr and logging records to its log file.

Two ways, one per kind of worker:

* ``fd`` (a worker process runs one attempt at a time): the log file is dup2'ed onto file
  descriptors 1 and 2, so output of C extensions and of child processes lands in the log
  too; ``sys.stdout``/``sys.stderr`` and a root logging handler point at it for the
  attempt. Everything is put back afterwards.
* ``thread`` (attempts share the driver process): file descriptors are process-wide, so they
  are left alone. ``sys.stdout``/``sys.stderr`` are replaced once, for good, by proxies that
  send each write to the stream registered for the writing thread, or to the original
  stream; one root handler does the same for logging records. Output of threads a task
  starts itself, of C code and of child processes is not captured in this mode.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any, TextIO

from legato.security.files import open_private, replace_private
from legato.security.masking import Masker

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_formatter = logging.Formatter(LOG_FORMAT)

#: Bytes of the end of a log given up, on a full volume, to make room for the line that
#: says the log was cut.
_ROOM_FOR_MARKER = 16 * 1024


def open_log(path: str) -> int:
    """Open (append) an attempt's log file, creating its folder if needed; returns the fd."""
    # O_APPEND: the dup'ed descriptors of children and the Python stream all write at the
    # end, so nothing overwrites anything (and a retry writing to the same file appends).
    # Readable too: capping the log reads its tail back (cap_log).
    # Owner-only (0600, folders 0700): a log holds whatever the task printed.
    return open_private(path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)


class LogWatch:
    """One attempt's log while it is written: the first write refused (a full volume), and
    its cap, applied at the end (``finish_log``) and, for output that goes through Python's
    streams, while it grows: past twice the cap, the middle is cut at once, so a task
    printing without end cannot fill the volume."""

    def __init__(self, fd: int = -1, start: int = 0, cap: int = 0) -> None:
        self.error: str | None = None
        self.fd = fd
        self.start = start  # where this attempt's output begins in the file
        self.cap = cap  # 0: no cap
        self.cut = 0  # bytes of output cut so far
        self._marker = 0  # length of the cut's marker line in the file, once there is one
        self._unchecked = 0  # bytes written through the streams since the size was checked
        self._lock = threading.Lock()  # a task's threads may print at once

    def restart(self) -> None:
        """Watch the next attempt writing to the same file, emptied for it."""
        with self._lock:
            self.error = None
            self.start = self.cut = self._marker = self._unchecked = 0

    def refused(self, exc: OSError) -> None:
        if self.error is None:
            self.error = exc.strerror or str(exc)

    def wrote(self, count: int) -> None:
        """``count`` more bytes went through a stream: cut the log if it has grown too big."""
        if self.cap <= 0 or self.fd < 0:
            return
        self._unchecked += count
        if self._unchecked < self.cap // 4:
            return
        self._unchecked = 0
        try:
            if os.fstat(self.fd).st_size - self.start > 2 * self.cap:
                self.apply_cap()
        except OSError as exc:
            self.refused(exc)

    def apply_cap(self) -> int:
        """Keep the head and the tail of the output (``cap`` bytes in all) with a line between
        them saying how much was cut in all; returns the bytes cut by this call."""
        with self._lock:
            done = cap_log(self.fd, self.start, self.cap, self.cut, self._marker)
            if done is None:
                return 0
            cut, self._marker = done
            self.cut += cut
            return cut


class _Guarded:
    """A text stream whose write errors are noted on a LogWatch instead of raised: a task
    must not fail because the volume of its log is full, and the log must say it was cut."""

    def __init__(self, stream: TextIO, watch: LogWatch) -> None:
        self._stream = stream
        self._watch = watch

    def write(self, text: str) -> int:
        try:
            written = int(self._stream.write(text))
        except OSError as exc:
            self._watch.refused(exc)
            return len(text)
        self._watch.wrote(written)
        return written

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            self._watch.refused(exc)

    def __getattr__(self, name: str) -> Any:  # encoding, isatty, fileno, buffer...
        if name in ("_stream", "_watch"):  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self._stream, name)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def cap_log(
    fd: int, start: int, cap: int, cut_before: int = 0, marker_before: int = 0
) -> tuple[int, int] | None:
    """Keep at most ``cap`` bytes of what was written to the log ``fd`` from offset ``start``:
    its head and its tail, with a line in between saying how much was cut. None when the
    log is within the cap (or ``cap`` is 0: no cap); else the bytes of output this call cut
    and the length of the line written.

    ``cut_before`` and ``marker_before``: what an earlier call cut, and the length of its line
    (cut again now, with the middle): the new line counts all that was cut. The head is kept
    byte for byte (a reader who followed the log while it grew saw exactly it); the tail
    starts at a line. ``fd`` must be open for reading and appending.
    """
    size = os.fstat(fd).st_size
    if cap <= 0 or size - start <= cap:
        return None
    head = cap // 2
    tail = os.pread(fd, cap - head, size - (cap - head))
    newline = tail.find(b"\n", 0, 4096)
    if 0 <= newline < len(tail) - 1:
        tail = tail[newline + 1 :]
    cut = size - start - head - len(tail) - marker_before
    marker = (
        f"\n… {cut_before + cut:,} bytes cut: this attempt's log keeps its first and last "
        f"bytes, {cap:,} in all ([logs] max_attempt_bytes) …\n"
    ).encode()
    os.ftruncate(fd, start + head)
    _write_all(fd, marker + tail)
    return cut, len(marker)


def volume_full(fd: int) -> bool:
    """Whether the volume holding the file ``fd`` has no room left for this process."""
    try:
        st = os.fstatvfs(fd)
    except OSError:
        return False
    return (st.f_bfree if os.geteuid() == 0 else st.f_bavail) == 0


def mark_full(fd: int, start: int, error: str, make_room: bool = True) -> None:
    """End the log ``fd`` with a line saying it was cut because its volume is full. If even
    that line finds no room, the last few kilobytes the attempt wrote make room for it
    (with ``make_room``: when writes are known to have been refused)."""
    marker = (
        f"\nlegato: this log was cut: its volume is full ({error}); output written after "
        "this point was lost\n"
    ).encode()
    try:
        _write_all(fd, marker)
        return
    except OSError:
        if not make_room:
            return
    try:
        size = os.fstat(fd).st_size
        os.ftruncate(fd, max(start, size - _ROOM_FOR_MARKER))
        _write_all(fd, marker)
    except OSError:
        pass  # the attempt's record still says so (finish_log's note)


def mark_log_full(path: str, error: str) -> None:
    """``mark_full`` on the log file at ``path`` (an attempt's log written by the driver)."""
    try:
        fd = open_log(path)
    except OSError:
        return
    try:
        mark_full(fd, 0, error)
    finally:
        os.close(fd)


def finish_log(watch: LogWatch) -> str | None:
    """Cap the attempt's log (``LogWatch.apply_cap``) and mark it if its volume filled up;
    returns a note for the attempt's record saying how its log was cut, or None when it is
    whole."""
    notes: list[str] = []
    try:
        watch.apply_cap()
    except OSError as exc:
        watch.refused(exc)
    if watch.cut:
        notes.append(f"{watch.cut:,} bytes cut from the middle (the cap is {watch.cap:,} bytes)")
    # Output of C code and child processes goes to the file unseen: a volume full at the
    # end says some of it may be lost, though the log is not shortened on a mere suspicion.
    error = watch.error or ("no space left on device" if volume_full(watch.fd) else None)
    if error is not None:
        mark_full(watch.fd, watch.start, error, make_room=watch.error is not None)
        notes.append(f"its volume was full ({error}): output may be missing")
    return "log cut: " + "; ".join(notes) if notes else None


def mask_log(fd: int, path: str, masker: Masker) -> None:
    """Replace the log at ``path`` (open as ``fd``) by a copy with the values ``masker`` knows
    replaced by ``****``. Output reaches the file at the level of file descriptors (child
    processes too), so the values a task was handed are masked once its attempt has ended.
    The copy is renamed over the log: a reader sees the old file or the new one, never half
    of one, and one following it by byte offsets can tell (its inode changed)."""
    size = os.fstat(fd).st_size
    data = os.pread(fd, size, 0) if size else b""
    masked = masker.mask_bytes(data)
    if masked != data:
        replace_private(path, masked)


def _text_stream(fd: int) -> TextIO:
    # Line buffered: a print()ed line reaches the file before a later os.write(1, ...).
    return open(  # closed by the capture context
        fd, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False
    )


def _dup(fd: int) -> int | None:
    try:
        return os.dup(fd)
    except OSError:  # the descriptor is not open in this process
        return None


class _FdState:
    """What fd capture reuses from one attempt to the next in a worker process."""

    stream: TextIO | None = None
    pid = 0
    handler = logging.StreamHandler()
    handler.setLevel(logging.INFO)
    handler.setFormatter(_formatter)


def _fd1_stream() -> TextIO:
    # One text stream over fd 1 serves every attempt of a worker: fd 1 *is* the attempt's
    # log while one runs, so nothing needs creating per attempt.
    if _FdState.stream is None or _FdState.stream.closed or _FdState.pid != os.getpid():
        _FdState.stream = _text_stream(1)
        _FdState.pid = os.getpid()
    return _FdState.stream


@contextmanager
def capture_fds(fd: int, watch: LogWatch | None = None) -> Iterator[TextIO]:
    """Send fds 1 and 2, sys.stdout/stderr and root logging to ``fd`` (a worker process);
    Python-level write errors go to ``watch``."""
    for s in (sys.stdout, sys.stderr):
        with suppress(Exception):
            s.flush()  # the worker's own pending output belongs before the redirection
    saved = (_dup(1), _dup(2))
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    stream: Any = _fd1_stream()
    if watch is not None:
        stream = _Guarded(stream, watch)
    old = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = stream
    handler = _FdState.handler
    handler.setStream(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        with suppress(Exception):
            stream.flush()  # while fd 1 is still the log
        sys.stdout, sys.stderr = old
        for target, copy in zip((1, 2), saved, strict=True):
            if copy is None:
                with suppress(OSError):
                    os.close(target)
            else:
                os.dup2(copy, target)
                os.close(copy)


class _Router:
    """Stands in for sys.stdout or sys.stderr; each write goes to its thread's stream."""

    def __init__(self, fallback: Any) -> None:
        self._fallback = fallback
        self.targets: dict[int, TextIO] = {}

    def _current(self) -> Any:
        return self.targets.get(threading.get_ident(), self._fallback)

    def write(self, text: str) -> int:
        return int(self._current().write(text))

    def writelines(self, lines: Any) -> None:
        self._current().writelines(lines)

    def flush(self) -> None:
        self._current().flush()

    def __getattr__(self, name: str) -> Any:  # encoding, isatty, fileno, buffer...
        if name in ("targets", "_fallback"):  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self._current(), name)


class _ThreadLogHandler(logging.Handler):
    """One root handler for all thread attempts: a record goes to its thread's stream."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(_formatter)
        self.targets: dict[int, TextIO] = {}

    def emit(self, record: logging.LogRecord) -> None:
        stream = self.targets.get(record.thread or 0)
        if stream is None:
            return
        try:
            stream.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


_install_lock = threading.Lock()
_log_handler = _ThreadLogHandler()


def _routers() -> tuple[_Router, _Router, _ThreadLogHandler]:
    # Installed once and kept: a proxy removed per attempt could drop output of another
    # thread's attempt still running. Re-installed if someone (a test runner) swapped the
    # streams or the root handlers since.
    with _install_lock:
        out = []
        for name in ("stdout", "stderr"):
            current = getattr(sys, name)
            if not isinstance(current, _Router):
                current = _Router(current)
                setattr(sys, name, current)
            out.append(current)
        root = logging.getLogger()
        if _log_handler not in root.handlers:
            root.addHandler(_log_handler)
        return out[0], out[1], _log_handler


@contextmanager
def capture_thread(fd: int, watch: LogWatch | None = None) -> Iterator[TextIO]:
    """Send this thread's sys.stdout/stderr writes and logging records to ``fd``; write
    errors go to ``watch``."""
    raw = _text_stream(fd)
    stream: Any = raw if watch is None else _Guarded(raw, watch)
    ident = threading.get_ident()
    holders = _routers()
    for holder in holders:
        holder.targets[ident] = stream
    try:
        yield stream
    finally:
        for holder in holders:
            holder.targets.pop(ident, None)
        with suppress(Exception):
            stream.flush()
        with suppress(Exception):
            raw.close()
