"""Where connectors read and write: a path template filled from the task's context, the
fsspec filesystem it names, and writes that appear whole or not at all.

A target is an fsspec URL (``"s3://bucket/orders/{partition}/part.parquet"``, a local path,
``"memory://..."``) or, with ``filesystem=`` (e.g. a ``files`` resource), a path inside that
filesystem. Placeholders are filled with ``str.format`` from the context: ``{partition}``,
each partition dimension by name (``{date}``, ``{region}``), ``{window_start}`` and
``{window_end}`` (datetimes, so ``{window_start:%Y/%m/%d}`` works), ``{run_id}``,
``{pipeline}``, ``{task}``, and any ``fields`` the caller adds.
"""

from __future__ import annotations

import posixpath
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from string import Formatter
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

    from legato.definitions.context import Context

__all__ = ["atomic_open", "filesystem_for", "fill_path", "format_of", "path_fields"]

#: Format names by file suffix (after any compression suffix, which fsspec handles).
SUFFIXES = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
FORMATS = frozenset(SUFFIXES.values())


def path_fields(ctx: Context | None, fields: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The values a path template may name, from ``ctx`` and then ``fields``."""
    values: dict[str, Any] = {}
    if ctx is not None:
        values.update(
            run_id=ctx.run_id,
            pipeline=ctx.pipeline,
            task=ctx.task,
            partition=ctx.partition,
            window_start=ctx.window_start,
            window_end=ctx.window_end,
        )
        values.update(ctx.partition_keys)
    values.update(fields or {})
    return {k: v for k, v in values.items() if v is not None}


def fill_path(
    template: str, ctx: Context | None = None, fields: Mapping[str, Any] | None = None
) -> str:
    """``template`` with its ``{placeholders}`` filled (see the module docstring). A
    placeholder with no value, e.g. ``{partition}`` in a run without partitions, is an error
    that says which values there are."""
    names = {name for _, name, _, _ in Formatter().parse(template) if name}
    if not names:
        return template
    values = path_fields(ctx, fields)
    missing = sorted(n for n in names if n.split(".")[0].split("[")[0] not in values)
    if missing:
        have = ", ".join(sorted(values)) or "none (no ctx given)"
        raise ValueError(f"path {template!r}: no value for {{{missing[0]}}} (values: {have})")
    return template.format(**values)


def filesystem_for(
    target: str,
    filesystem: AbstractFileSystem | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> tuple[AbstractFileSystem, str]:
    """The filesystem and the path in it that ``target`` names: ``filesystem`` as given with
    ``target`` a path inside it, or the one ``target``'s URL names."""
    if filesystem is not None:
        if storage_options:
            raise ValueError("give storage_options or filesystem, not both")
        return filesystem, target
    from fsspec.core import url_to_fs

    fs, path = url_to_fs(target, **dict(storage_options or {}))
    return fs, path


def format_of(path: str, given: str | None = None) -> str:
    """The file format of ``path``: ``given``, or the one its suffix says."""
    if given is not None:
        if given not in FORMATS:
            raise ValueError(f"format {given!r}: use one of {', '.join(sorted(FORMATS))}")
        return given
    from fsspec.utils import infer_compression

    name = path.rsplit("/", 1)[-1].lower()
    if infer_compression(name):
        name = name.rsplit(".", 1)[0]
    for suffix, fmt in SUFFIXES.items():
        if name.endswith(suffix):
            return fmt
    raise ValueError(
        f"cannot tell the format of {path!r} from its suffix "
        f"({', '.join(SUFFIXES)}): pass format= one of {', '.join(sorted(FORMATS))}"
    )


@contextmanager
def atomic_open(fs: AbstractFileSystem, path: str, *, atomic: bool = True) -> Iterator[IO[bytes]]:
    """A binary file to write ``path`` through, compressed as its suffix says. With
    ``atomic``, the bytes go to a hidden file beside it that is moved onto ``path`` once
    complete: a rename on local disks, a server-side copy on object stores, so a reader
    never sees half a file; on an error the hidden file is removed and ``path`` is left as
    it was."""
    from fsspec.utils import infer_compression

    parent = posixpath.dirname(path)
    if parent:
        fs.makedirs(parent, exist_ok=True)
    compression = infer_compression(path)
    if not atomic:
        with fs.open(path, "wb", compression=compression) as fh:
            yield fh
        return
    name = path.rsplit("/", 1)[-1]
    # Hidden and ending in .tmp: globs such as "*.parquet" never pick it up, and readers
    # here skip names starting with a dot.
    temp = f"{parent}/.{name}.{uuid.uuid4().hex[:12]}.tmp" if parent else f".{name}.tmp"
    try:
        with fs.open(temp, "wb", compression=compression) as fh:
            yield fh
        fs.mv(temp, path)
    except BaseException:
        if fs.exists(temp):
            fs.rm(temp)
        raise
