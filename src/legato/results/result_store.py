"""The result store: task outputs kept under a root folder or fsspec URL, one file per result.

A local root uses plain ``os`` calls (no fsspec import: it is the fast, common case) and
writes each file atomically: into a hidden temp file next to the target, then
``os.replace``. A crash mid-write leaves at worst a temp file, never a half result under the
real name. No fsync: a result only has to survive the process that wrote it, not a power
cut, and an fsync per task would dominate the cost of small tasks.

Any other root (``s3://bucket/prefix``, ``memory://x``...) goes through fsspec. The value is
serialized in memory first and written with one ``pipe_file`` call, which object stores
apply atomically (a PUT). Other fsspec file systems give no such promise.

Refs hold absolute URIs (a local absolute path or the full URL) so that any process can read
them. A ``memory://`` store lives inside one process: use it with thread mode or in tests.
"""

from __future__ import annotations

import io
import itertools
import os
import pickle
import shutil
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from typing import IO, Any

from legato.domain.ids import run_folder
from legato.domain.refs import ResultRef
from legato.results import exact, serializers
from legato.results.result_errors import ResultError
from legato.security.files import open_private

_LOCAL_PROTOCOLS = ("file://", "local://")
_tmp_counter = itertools.count()  # next() is atomic under the GIL: unique per process
REASON_LIMIT = 300  # characters of a serializer's message kept in a reason

# How formats are named in notes and errors.
_KIND = {
    serializers.PANDAS: "Parquet",
    serializers.POLARS: "Parquet",
    serializers.ARROW: "Parquet",
    serializers.IPC_PANDAS: "Arrow IPC",
    serializers.IPC_POLARS: "Arrow IPC",
    serializers.IPC_ARROW: "Arrow IPC",
    serializers.PICKLE: "pickle",
}


class _Unserializable(Exception):
    """The format cannot hold the value (as opposed to an I/O error).

    ``changed``: it could be written, but would not come back equal.
    """

    def __init__(self, reason: str, cause: BaseException | None = None, changed: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.cause = cause
        self.changed = changed


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    text = text or type(exc).__name__
    return text if len(text) <= REASON_LIMIT else text[: REASON_LIMIT - 1] + "…"


def _check_key(key: str) -> None:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid result key {key!r}")


class ResultStore:
    """Stores task results under ``root``: a local folder or any fsspec URL.

    ``storage_options`` are passed to fsspec (credentials, endpoint...) for URL roots.
    Safe to share between threads; picklable (the fsspec file system is re-created lazily,
    also after a fork).
    """

    def __init__(
        self, root: str | os.PathLike[str], storage_options: Mapping[str, Any] | None = None
    ) -> None:
        text = os.fspath(root)
        for prefix in _LOCAL_PROTOCOLS:
            if text.startswith(prefix):
                text = text[len(prefix) :]
                break
        self._local: str | None = None
        self._url: str | None = None
        if "://" in text:
            self._url = text.rstrip("/")
        else:
            self._local = os.path.abspath(os.path.expanduser(text))
        self._options = dict(storage_options or {})
        self._fs: Any = None
        self._fs_base = ""
        self._fs_pid = 0

    @property
    def root(self) -> str:
        """The absolute local path or the URL results are kept under."""
        return self._local if self._local is not None else str(self._url)

    def __repr__(self) -> str:
        return f"ResultStore({self.root!r})"

    def __getstate__(self) -> dict[str, Any]:
        return {"local": self._local, "url": self._url, "options": self._options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._local, self._url, self._options = state["local"], state["url"], state["options"]
        self._fs, self._fs_base, self._fs_pid = None, "", 0

    # -- writing -------------------------------------------------------------------------

    def put(self, key: str, value: Any, result_format: str = serializers.AUTO) -> ResultRef:
        """Store ``value`` under ``key`` (like "<run folder>/<task_key>") and return its ref.

        None is not written (its ref has no URI). ``result_format`` "auto" stores frames as
        Parquet when that gives them back exactly; otherwise in a format that does (Arrow
        IPC for Arrow and polars, pickle for pandas), with the reason in the ref's ``note``.
        "parquet", "arrow-ipc" or "pickle" asks for that format, and a value it cannot hold
        exactly raises ResultError. ResultError is raised too when the value cannot be
        serialized at all; nothing is left behind then. I/O errors (OSError) propagate as
        they are: they may be transient.
        """
        _check_key(key)
        fmt = serializers.format_of(value)
        if fmt == serializers.NONE:
            return ResultRef(None, serializers.NONE)
        if result_format == serializers.AUTO:
            return self._put_auto(key, fmt, value)
        return self._put_as(key, fmt, value, result_format)

    def _put_auto(self, key: str, fmt: str, value: Any) -> ResultRef:
        if fmt == serializers.PICKLE:
            return ResultRef(self._write_or_fail(key, fmt, value, None), fmt)
        verdict = exact.check(fmt, value)
        note = f"{_KIND[fmt]} would change it: {verdict.reason}" if verdict.reason else None
        if note is None:
            try:
                return ResultRef(self._write(key, fmt, value, verdict.verify), fmt)
            except _Unserializable as exc:
                verb = "would change it" if exc.changed else "cannot hold it"
                note = f"{_KIND[fmt]} {verb}: {exc.reason}"
        target = exact.fallback(fmt, value)
        if target != serializers.PICKLE:
            try:
                return ResultRef(self._write(key, target, value), target, note)
            except _Unserializable as exc:
                note = f"{note}; Arrow IPC cannot hold it: {exc.reason}"
        pickle = serializers.PICKLE
        return ResultRef(self._write_or_fail(key, pickle, value, None), pickle, note)

    def _put_as(self, key: str, fmt: str, value: Any, request: str) -> ResultRef:
        if request == serializers.PICKLE:
            pickle = serializers.PICKLE
            return ResultRef(self._write_or_fail(key, pickle, value, request), pickle)
        if request not in serializers.REQUESTS:
            raise ValueError(f"unknown result format {request!r}")
        target = serializers.flavour(request, fmt)
        if target is None:
            reason = (
                f"result_format={request!r} holds pandas, polars or Arrow frames, "
                f"not {type(value).__name__}"
            )
            raise ResultError(f"result {key!r} cannot be stored: {reason}", reason)
        verdict = exact.check(target, value)
        if verdict.reason:
            reason = f"result_format={request!r} would change it: {verdict.reason}"
            raise ResultError(f"result {key!r} cannot be stored: {reason}", reason)
        return ResultRef(self._write_or_fail(key, target, value, request, verdict.verify), target)

    def _write_or_fail(
        self, key: str, fmt: str, value: Any, request: str | None, verify: bool = False
    ) -> str:
        """Write ``value`` as ``fmt``, or raise ResultError."""
        try:
            return self._write(key, fmt, value, verify)
        except _Unserializable as exc:
            reason = exc.reason
            if request is not None and fmt != serializers.PICKLE:
                verb = "would change it" if exc.changed else "cannot hold it"
                reason = f"result_format={request!r} {verb}: {reason}"
            raise ResultError(f"result {key!r} cannot be stored: {reason}", reason) from exc.cause

    def put_items(
        self, key: str, values: Sequence[Any], result_format: str = serializers.AUTO
    ) -> tuple[ResultRef, ...]:
        """Store each element of ``values`` under ``key/items/<i>``; all or nothing."""
        refs: list[ResultRef] = []
        try:
            for i, value in enumerate(values):
                refs.append(self.put(f"{key}/items/{i}", value, result_format))
        except BaseException:
            for ref in refs:
                with suppress(Exception):
                    self.delete(ref)
            raise
        return tuple(refs)

    def put_pickled(self, key: str, data: bytes) -> ResultRef:
        """Store ``data``, a value already pickled (protocol 5), under ``key``."""
        _check_key(key)
        return ResultRef(self._write(key, serializers.PICKLE, None, data=data), serializers.PICKLE)

    def put_parts(self, key: str, blobs: Sequence[bytes]) -> tuple[ResultRef, ...]:
        """Store ``blobs`` (values each pickled with protocol 5) in one file under ``key``;
        returns a ref to each, ``<file>#<i>`` of format "pickle-part".

        The results of a batch of mapped elements go this way: one file, one write and one
        rename for them all instead of one each. Written whole or not at all, like any
        result; its refs are given out only once it is in place.
        """
        _check_key(key)
        uri = self._write(key, serializers.PART, tuple(blobs))
        return tuple(ResultRef(f"{uri}#{i}", serializers.PART) for i in range(len(blobs)))

    def _write(
        self, key: str, fmt: str, value: Any, verify: bool = False, data: bytes | None = None
    ) -> str:
        """Write ``value`` as ``fmt`` (or ``data``, its bytes already); with ``verify``, only
        once it reads back equal."""
        name = key + serializers.SUFFIX[fmt]
        if data is None and (verify or self._local is None):
            buf = io.BytesIO()
            _serialize(fmt, value, buf)
            data = buf.getvalue()
            if verify:
                _check_round_trip(fmt, value, data)
        if self._local is not None:
            return self._write_local(os.path.join(self._local, name), fmt, value, data)
        fs = self._filesystem()
        path = f"{self._fs_base}/{name}"
        try:
            fs.pipe_file(path, data)
        except FileNotFoundError:  # file systems with real folders
            fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            fs.pipe_file(path, data)
        return str(fs.unstrip_protocol(path))

    @staticmethod
    def _write_local(path: str, fmt: str, value: Any, data: bytes | None) -> str:
        folder, base = os.path.split(path)
        tmp = os.path.join(folder, f".{base}.{os.getpid()}.{next(_tmp_counter)}.tmp")
        # Owner-only (0600, folders 0700): results are the data the pipelines handle.
        fd = open_private(tmp, os.O_WRONLY | os.O_EXCL | os.O_CLOEXEC)
        try:
            with open(fd, "wb") as f:
                if data is None:
                    _serialize(fmt, value, f)
                else:
                    f.write(data)
            os.replace(tmp, path)
        except BaseException:
            with suppress(OSError):
                os.unlink(tmp)
            raise
        return path

    # -- reading -------------------------------------------------------------------------

    def stored_size(self, ref: ResultRef) -> int | None:
        """Bytes of the stored result under a local root; None elsewhere (asking an object
        store would cost a round trip per result) or when nothing was stored."""
        if self._local is None or ref.uri is None or ref.format == serializers.PART:
            return None
        try:
            return os.path.getsize(ref.uri)
        except OSError:
            return None

    def exists(self, ref: ResultRef) -> bool:
        """Whether the result ``ref`` points to is still stored (a None result always is):
        a run that would reuse it asks before relying on it."""
        uri = ref.uri
        if uri is None or ref.format == serializers.NONE:
            return True
        if ref.format == serializers.PART:
            uri = _part_of(uri)[0]
        if uri.startswith("/"):
            return os.path.exists(uri)
        fs, path = self._fs_for(uri)
        return bool(fs.exists(path))

    def get(self, ref: ResultRef) -> Any:
        """Load the value a ref points to. Raises ResultError if it is missing or unreadable."""
        if ref.uri is None or ref.format == serializers.NONE:
            return None
        if ref.format == serializers.PART:
            return self.get_many((ref,))[0]
        return self._read(ref.uri, lambda source: serializers.read(ref.format, source))

    def get_many(self, refs: Sequence[ResultRef]) -> list[Any]:
        """``get`` of each ref, in order. Consecutive parts of one file (the elements of a
        mapped node, in order) read that file once; only one such file is held at a time."""
        out: list[Any] = []
        held: tuple[str, tuple[bytes, ...]] | None = None
        for ref in refs:
            if ref.format != serializers.PART or ref.uri is None:
                out.append(self.get(ref))
                continue
            path, index = _part_of(ref.uri)
            if held is None or held[0] != path:
                held = (path, self._read(path, lambda s: serializers.read(serializers.PART, s)))
            try:
                out.append(_unpickle(held[1][index]))
            except IndexError:
                raise ResultError(f"result {ref.uri} is missing", "no such part") from None
        return out

    def get_columns(self, ref: ResultRef, columns: Sequence[str]) -> Any:
        """What ``ref`` points to, but of a Parquet result only ``columns`` (those it has),
        as an Arrow table: a check of one key column need not load a wide table. Other
        formats cannot be read in part: the whole value, as ``get`` gives it."""
        if ref.uri is None or not ref.format.startswith("parquet-"):
            return self.get(ref)
        return self._read(ref.uri, lambda source: _parquet_columns(source, columns))

    def _read(self, uri: str, read: Callable[[Any], Any]) -> Any:
        """``read`` of the local path or open file at ``uri``; a missing or unreadable
        result raises ResultError, an I/O error is left as it is (it may pass)."""
        try:
            if uri.startswith("/"):
                return read(uri)
            fs, path = self._fs_for(uri)
            with fs.open(path, "rb") as f:
                return read(f)
        except FileNotFoundError:
            raise ResultError(f"result {uri} is missing", "file not found") from None
        except OSError:
            raise
        except Exception as exc:
            reason = _reason(exc)
            raise ResultError(f"result {uri} cannot be read: {reason}", reason) from exc

    # -- deleting ------------------------------------------------------------------------

    def delete(self, ref: ResultRef) -> None:
        """Remove one stored result; a missing file is not an error. A part shares its
        file with others: it goes with its run (``delete_run``)."""
        if ref.uri is None or ref.format == serializers.PART:
            return
        if ref.uri.startswith("/"):
            with suppress(FileNotFoundError):
                os.unlink(ref.uri)
            return
        fs, path = self._fs_for(ref.uri)
        with suppress(FileNotFoundError):
            fs.rm_file(path)

    def delete_run(self, run_id: str) -> None:
        """Remove every result of a run (in its day's folder, or at the root where runs
        made before that layout keep theirs)."""
        _check_key(run_id)
        for folder in dict.fromkeys((run_folder(run_id), run_id)):
            if self._local is not None:
                shutil.rmtree(os.path.join(self._local, folder), ignore_errors=True)
                continue
            fs = self._filesystem()
            path = f"{self._fs_base}/{folder}"
            if fs.exists(path):
                fs.rm(path, recursive=True)

    # -- fsspec --------------------------------------------------------------------------

    def _filesystem(self) -> Any:
        # Re-created after a fork: fsspec file systems may hold sockets or event-loop threads
        # that do not survive one.
        if self._fs is None or self._fs_pid != os.getpid():
            import fsspec

            self._fs, base = fsspec.core.url_to_fs(str(self._url), **self._options)
            self._fs_base = str(base).rstrip("/")
            self._fs_pid = os.getpid()
        return self._fs

    def _fs_for(self, uri: str) -> tuple[Any, str]:
        if self._url is not None and uri.startswith(self._url.split("://", 1)[0] + "://"):
            fs = self._filesystem()
            return fs, str(fs._strip_protocol(uri))
        import fsspec

        fs, path = fsspec.core.url_to_fs(uri)
        return fs, str(path)


def _part_of(uri: str) -> tuple[str, int]:
    """The file and the index of a part's URI ("<file>#<index>")."""
    path, _, index = uri.rpartition("#")
    try:
        return path, int(index)
    except ValueError:
        raise ResultError(f"result {uri} is not a part of a file", "bad part") from None


def _unpickle(data: bytes) -> Any:
    try:
        return pickle.loads(data)
    except Exception as exc:
        reason = _reason(exc)
        raise ResultError(f"a part cannot be read: {reason}", reason) from exc


def _parquet_columns(source: Any, columns: Sequence[str]) -> Any:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(source)
    present = set(parquet.schema_arrow.names)
    return parquet.read(columns=[c for c in columns if c in present])


def _serialize(fmt: str, value: Any, f: IO[bytes]) -> None:
    try:
        serializers.write(fmt, value, f)
    except OSError:
        raise
    except Exception as exc:
        raise _Unserializable(_reason(exc), exc) from exc


def _check_round_trip(fmt: str, value: Any, data: bytes) -> None:
    """Raise _Unserializable unless ``data`` reads back equal to ``value``."""
    try:
        back = serializers.read(fmt, io.BytesIO(data))
        why = exact.difference(fmt, value, back)
    except Exception as exc:
        raise _Unserializable(f"it does not read back: {_reason(exc)}", exc, True) from exc
    if why is not None:
        raise _Unserializable(why, None, True)
