"""What code a load imported, and a cheap way to tell whether any of it changed on disk.

"The project's code" is every module a load imported whose file is neither in the standard
library, nor in site-packages, nor in legato itself: the project's own modules and any local
package it imports from outside its folder (a sibling checkout on PYTHONPATH, an editable
install). A ``Fingerprint`` keeps, per such file, its size, mtime and sha256; the code version
hashes the (path, sha256) pairs. ``changed()`` only stats files and lists the project's
package folders (a new submodule is code too), so a daemon can ask it on every tick.
"""

from __future__ import annotations

import functools
import hashlib
import os
import site
import sys
import sysconfig
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import legato

#: Files modified this close to a load are compared by content, not only by stat.
RACY_NS = 2_000_000_000


@dataclass(frozen=True)
class FileStamp:
    """One source file as a load found it."""

    path: str  # relative to the project folder where it lies inside it, else absolute
    mtime_ns: int
    size: int
    sha256: str


def _not_user_roots() -> tuple[str, ...]:
    # Not sys.prefix itself: with a system Python (prefix /usr) a project may well live
    # under it (/usr/src/app).
    paths: set[str] = set()
    paths.update(
        v
        for k, v in sysconfig.get_paths().items()
        if k in ("stdlib", "platstdlib", "purelib", "platlib")
    )
    try:
        paths.update(site.getsitepackages())
        paths.add(site.getusersitepackages())
    except AttributeError:  # an embedded interpreter without the site functions
        pass
    # Those of the base interpreter too, when a virtualenv sees them.
    paths.update(p for p in sys.path if os.path.basename(p) in ("site-packages", "dist-packages"))
    paths.add(str(Path(legato.__file__).resolve().parent))
    return tuple(sorted({os.path.realpath(p) + os.sep for p in paths if p}))


_NOT_USER = _not_user_roots()


@functools.lru_cache(maxsize=8192)
def real_path(path: str) -> str:
    """``os.path.realpath(path)``, remembered: each load asks it of every module in
    ``sys.modules`` (a thousand modules, several ``lstat`` each: most of a reload's time),
    and where a module's file resolves to does not change while it is imported (an edit
    changes the file's content, not the links to it)."""
    return os.path.realpath(path)


def is_under(path: str, root: Path) -> bool:
    """Whether the file ``path`` resolves to a place inside the folder ``root``."""
    real, top = real_path(path), str(root)
    return real == top or real.startswith(top.rstrip(os.sep) + os.sep)


def is_user_file(path: str) -> bool:
    """Whether ``path`` is user code: outside the stdlib, site-packages and legato."""
    real = real_path(path)
    return not any(real.startswith(root) for root in _NOT_USER)


def _stat(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _listing(folders: Iterable[str]) -> tuple[tuple[str, int, int], ...]:
    # The .py files of each folder with their stamps, and its subpackages: a new, removed or
    # edited module (even one that failed to import, so has no module object) shows here.
    out = []
    for folder in folders:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.name.endswith(".py") and entry.is_file():
                    st = entry.stat()
                    out.append((entry.path, st.st_mtime_ns, st.st_size))
                elif entry.is_dir() and os.path.exists(os.path.join(entry.path, "__init__.py")):
                    out.append((entry.path, 0, 0))
            except OSError:
                continue
    return tuple(out)


@dataclass(frozen=True)
class Fingerprint:
    """The files of the code a load imported, and the folders watched for new modules."""

    root: str
    files: tuple[FileStamp, ...]
    folders: tuple[str, ...]
    listing: tuple[tuple[str, int, int], ...]
    taken_ns: int = 0  # when the files were read (wall clock, like mtimes)

    @classmethod
    def take(cls, root: Path, files: Iterable[str], folders: Iterable[str]) -> Fingerprint:
        """Stat and hash ``files``; list ``folders``."""
        root_s = str(root)
        taken_ns = time.time_ns()
        stamps = []
        for file in sorted(set(files)):
            st = _stat(file)
            try:
                data = Path(file).read_bytes()
            except OSError:
                continue
            if st is None:
                continue
            stamps.append(
                FileStamp(_relative(file, root_s), st[0], st[1], hashlib.sha256(data).hexdigest())
            )
        folders_t = tuple(sorted(set(folders)))
        return cls(root_s, tuple(stamps), folders_t, _listing(folders_t), taken_ns)

    @property
    def digest(self) -> str:
        """A hash of the (path, sha256) pairs: the same code gives the same digest."""
        h = hashlib.sha256()
        for f in self.files:
            h.update(f"{f.path}\0{f.sha256}\n".encode())
        return h.hexdigest()

    def version(self, pipeline: str) -> str:
        """The code version of pipeline ``pipeline`` loaded from this code."""
        return hashlib.sha256(f"{self.digest}:{pipeline}".encode()).hexdigest()[:16]

    def changed(self) -> bool:
        """Whether a file changed on disk since (by stat), or a module file came or went.

        A file written within ``RACY_NS`` of the load may have been changed again in the same
        timestamp tick: its content is compared too (as git does with racy index entries).
        """
        for f in self.files:
            path = self.absolute(f.path)
            if _stat(path) != (f.mtime_ns, f.size):
                return True
            if f.mtime_ns >= self.taken_ns - RACY_NS and _sha256(path) != f.sha256:
                return True
        return _listing(self.folders) != self.listing

    def differs_from(self, newer: Fingerprint) -> bool:
        """Whether ``newer`` (taken of the same files after ``changed()``) holds other code:
        other contents, a module file added or removed, or a file that failed to import
        (so is not among ``files``) touched. A file merely touched is not a change."""
        if newer.digest != self.digest:
            return True
        if [e[0] for e in newer.listing] != [e[0] for e in self.listing]:
            return True
        known = {self.absolute(f.path) for f in self.files}
        return any(
            a != b for a, b in zip(self.listing, newer.listing, strict=True) if a[0] not in known
        )

    def again(self) -> Fingerprint:
        """The same files and folders, read again now."""
        return Fingerprint.take(
            Path(self.root), [self.absolute(f.path) for f in self.files], self.folders
        )

    def absolute(self, path: str) -> str:
        return path if os.path.isabs(path) else os.path.join(self.root, path)

    def hashes(self) -> dict[str, str]:
        """Path -> sha256 of each file."""
        return {f.path: f.sha256 for f in self.files}


def _sha256(path: str) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def _relative(path: str, root: str) -> str:
    try:
        rel = os.path.relpath(path, root)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


__all__ = ["FileStamp", "Fingerprint", "is_under", "is_user_file", "real_path"]
