"""File-arrival listings over any fsspec URL or local path, for file-sensor triggers."""

from __future__ import annotations

import builtins
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from legato.scheduler.sources.event_source import SourceError, one_line, redact_url

# Names writers use for files still being written (or editor/OS droppings), never "arrived".
_IN_PROGRESS_SUFFIXES = (".tmp", ".part")
# Where filesystems put the modification time in fs.info(), most specific first.
_MTIME_KEYS = ("mtime", "LastModified", "last_modified", "updated", "modified", "time", "created")


@dataclass(frozen=True)
class FileEntry:
    """One file matched by a :class:`FileSource`.

    ``path`` is a full URL (``s3://bucket/key``, ``memory:///a/b``) for non-local filesystems
    and an absolute path for local files. ``size`` is in bytes and ``modified`` in epoch
    seconds, each ``None`` when the filesystem does not report it.
    """

    path: str
    size: int | None
    modified: float | None


class FileSource:
    """The files currently matching ``url_glob``: a local path or any fsspec URL with wildcards.

    Local paths may be relative (resolved against the working directory now) and, like URLs,
    may use ``**`` to match any number of directories. Directories are never listed, nor are
    files whose name starts with ``.`` or ends with ``.tmp`` / ``.part`` (writes in progress).
    """

    def __init__(self, url_glob: str) -> None:
        from fsspec.core import url_to_fs

        if "://" not in url_glob and not url_glob.startswith("file:"):
            url_glob = os.path.abspath(os.path.expanduser(url_glob))
        self.url_glob = url_glob
        try:
            self._fs, self._pattern = url_to_fs(url_glob)
        except (ValueError, ImportError) as exc:
            raise SourceError(f"cannot list {redact_url(url_glob)}: {one_line(exc)}") from exc
        protocols = self._fs.protocol
        protocols = (protocols,) if isinstance(protocols, str) else tuple(protocols)
        self._local = "file" in protocols

    def __repr__(self) -> str:
        return f"FileSource({redact_url(self.url_glob)!r})"

    def list(self) -> list[FileEntry]:
        """Matching files sorted by (modified, path); unknown modification times sort first.

        Raises :class:`SourceError` when the filesystem cannot be listed.
        """
        # Remote filesystems cache directory listings; a sensor must see new arrivals.
        self._fs.invalidate_cache()
        try:
            found: Mapping[str, Any] = self._fs.glob(self._pattern, detail=True)
        except OSError as exc:
            raise SourceError(f"cannot list {redact_url(self.url_glob)}: {one_line(exc)}") from exc
        entries = [
            self._entry(path, info)
            for path, info in found.items()
            if info.get("type") != "directory" and _arrived(path)
        ]
        entries.sort(key=lambda e: (e.modified if e.modified is not None else -1.0, e.path))
        return entries

    def new_since(self, seen: Collection[str]) -> builtins.list[FileEntry]:
        """Like :meth:`list`, without entries whose ``path`` is in ``seen``."""
        return [entry for entry in self.list() if entry.path not in seen]

    def _entry(self, path: str, info: Mapping[str, Any]) -> FileEntry:
        full = os.path.abspath(path) if self._local else self._fs.unstrip_protocol(path)
        size = info.get("size")
        return FileEntry(
            path=full,
            size=int(size) if isinstance(size, int | float) else None,
            modified=_modified(info),
        )


def _arrived(path: str) -> bool:
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return not name.startswith(".") and not name.endswith(_IN_PROGRESS_SUFFIXES)


def _modified(info: Mapping[str, Any]) -> float | None:
    """The modification time in epoch seconds from an fs.info() mapping, if it has one."""
    for key in _MTIME_KEYS:
        value = info.get(key)
        if value is None or isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
        if isinstance(value, datetime):
            # Object stores report UTC; a naive value is taken to be UTC too.
            if value.tzinfo is None:
                value = value.replace(tzinfo=UTC)
            return value.timestamp()
    return None
