"""Files only their owner may read: the store, logs, results and keys.

What the project creates on disk holds what its tasks saw (logs), made (results) and every
run's params (the store): the folders it makes are 0700 and its files 0600, whatever the
process's umask. Folders that were there already (the project's own, a shared volume) keep
their modes: they are the operator's.
"""

from __future__ import annotations

import os
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dirs(path: str | os.PathLike[str]) -> None:
    """Make the folder ``path`` and any missing parents, each one made 0700."""
    missing: list[Path] = []
    folder = Path(os.path.abspath(path))
    while not folder.exists():
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    for made in reversed(missing):
        try:
            made.mkdir(DIR_MODE)
        except FileExistsError:  # another process made it meanwhile: it made it 0700
            continue
        os.chmod(made, DIR_MODE)  # whatever the umask took away or left


def open_private(path: str | os.PathLike[str], flags: int) -> int:
    """``os.open`` of ``path`` with ``flags`` (O_CREAT among them); a file it creates is made
    0600 (one already there keeps its mode); missing folders are made as by
    :func:`private_dirs`."""
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return os.open(path, flags & ~os.O_CREAT, FILE_MODE)
    except FileNotFoundError:
        private_dirs(os.path.dirname(os.path.abspath(path)))
        return open_private(path, flags)
    try:
        os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_private(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` as a file only its owner may read (0600), whatever the umask;
    a file already there is replaced (and made 0600 before anything is written to it)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        os.write(fd, data)
    finally:
        os.close(fd)


def replace_private(path: str | os.PathLike[str], data: bytes, *, exclusive: bool = False) -> None:
    """Put ``data`` at ``path`` atomically as a 0600 file: written beside it, synced, then
    renamed over it, so a reader sees the old file or the new one, never half of one. With
    ``exclusive``, FileExistsError when ``path`` exists already (two processes making the
    first key: one wins, the other reads what it made)."""
    target = Path(path)
    private_dirs(target.parent)
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        try:
            os.fchmod(fd, FILE_MODE)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if exclusive:
            os.link(temp, target)  # fails if the target exists: no overwrite
        else:
            os.replace(temp, target)
    finally:
        if temp.exists():
            temp.unlink()
