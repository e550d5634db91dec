"""A file system rooted at a folder of any fsspec file system: what the ``files`` kind gives
tasks. Kept apart from the kind so that reading legato.toml never imports fsspec."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fsspec import AbstractFileSystem
from fsspec.implementations.dirfs import DirFileSystem

__all__ = ["RootedFileSystem"]


class RootedFileSystem(DirFileSystem):
    """fsspec's ``DirFileSystem``: every path is relative to the root (``fs.open("a/b.csv")``
    is ``<url>/a/b.csv``), plus the root's full URL and the storage options behind it, for
    libraries that want a URL (``pandas.read_parquet(fs.url_of("x.parquet"),
    storage_options=fs.options)``)."""

    def __init__(
        self,
        path: str,
        fs: AbstractFileSystem,
        options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(path=path, fs=fs, **kwargs)
        self._given_options = dict(options or {})

    @property
    def url(self) -> str:
        """The root as a full URL (``s3://bucket/prefix``, ``file:///srv/drop``...)."""
        return str(self.fs.unstrip_protocol(self.path))

    @property
    def options(self) -> dict[str, Any]:
        """The options the root's file system was made with (credentials, endpoint...)."""
        return dict(self._given_options)

    def url_of(self, path: str) -> str:
        """The full URL of ``path``, relative to the root."""
        return self.url.rstrip("/") + "/" + path.lstrip("/")
