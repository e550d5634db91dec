"""The ``files`` kind: a folder of any fsspec file system (local, S3, GCS, Azure, memory...).

    [resources.drop]
    kind = "files"
    url = "s3://landing/orders"
    options = { endpoint_url = "http://minio:9000", key = "${env:S3_KEY}", secret = "${secret:s3}" }

Tasks get a ``RootedFileSystem`` (``legato.resources.rooted``): paths are relative to ``url``.
A local path that is not absolute (``url = "data/drop"``) lies in the project's folder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from legato.resources.kind import ResourceError, ResourceKind

if TYPE_CHECKING:
    from legato.resources.rooted import RootedFileSystem

__all__ = ["FilesResource"]

#: Schemes whose folders are made when the resource is opened (object stores have none).
_MADE_ON_OPEN = frozenset({"file", "local", "memory"})


class FilesResource(ResourceKind):
    """``url``: a local folder or any fsspec URL; ``options``: the file system's storage
    options (credentials, endpoint, ...). A local folder or a memory one is created when the
    resource is opened, and written files get their folders made (``auto_mkdir``)."""

    kind = "files"
    settings_keys: ClassVar[frozenset[str]] = frozenset({"url", "options"})
    secret_keys: ClassVar[frozenset[str]] = frozenset(
        {"password", "token", "secret", "key", "account_key", "sas_token", "connection_string"}
    )

    def validate(self) -> None:
        if not self.require("url"):
            raise ResourceError(f"resource {self.name!r} (files): 'url' is empty")
        self.option("options", dict, None)

    def location(self) -> tuple[str, bool]:
        """The URL to open, a local path made absolute against the project's folder, and
        whether it is local."""
        url: str = self.settings["url"]
        if "::" in url:  # a chained URL (simplecache::s3://...) is fsspec's to read
            return url, False
        scheme, sep, rest = url.partition("://")
        if not sep:
            return self.project_path(url), True
        if scheme in ("file", "local"):
            return self.project_path(rest), True
        return url, False

    def open(self) -> RootedFileSystem:
        from fsspec.core import url_to_fs

        from legato.resources.rooted import RootedFileSystem

        url, local = self.location()
        options: dict[str, Any] = dict(self.settings.get("options") or {})
        if local:
            options.setdefault("auto_mkdir", True)
        try:
            fs, path = url_to_fs(url, **options)
        except (ImportError, ValueError, TypeError) as exc:
            raise ResourceError(
                f"resource {self.name!r} (files): cannot open {url}: {exc}"
            ) from None
        if local or _protocol(fs) in _MADE_ON_OPEN:
            fs.makedirs(path, exist_ok=True)
        return RootedFileSystem(path=path, fs=fs, options=options)

    def check(self, client: RootedFileSystem) -> str:
        try:
            entries = client.ls("", detail=False)
        except FileNotFoundError:
            # An object store has no folders: a prefix nothing was written under yet does not
            # exist, yet its bucket must. A folder made on open was removed since.
            bucket = client.path.strip("/").split("/", 1)[0]
            made = _protocol(client.fs) in _MADE_ON_OPEN
            if made or not bucket or not client.fs.exists(bucket):
                raise ResourceError(
                    f"resource {self.name!r} (files): {client.url} does not exist"
                ) from None
            return f"{client.url}: nothing there yet (bucket {bucket!r} answers)"
        return f"listed {client.url}: {len(entries)} entries"


def _protocol(fs: Any) -> str:
    protocol = fs.protocol
    return str(protocol if isinstance(protocol, str) else protocol[0])
