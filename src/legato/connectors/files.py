"""Files: read and write CSV, JSON lines and Parquet on any fsspec URL (local paths,
``s3://``, ``gs://``, ``memory://``, ...) or filesystem (a ``files`` resource), to and from
pandas, polars or pyarrow, with the run's partition in the path.

    from legato.connectors import files

    files.write(df, "s3://lake/orders/{partition}/part.parquet", ctx=ctx)
    df = files.read("s3://lake/orders/*/part.parquet", into="polars")

The format comes from the suffix (``.csv``, ``.jsonl``/``.ndjson``, ``.parquet``; a
compression suffix such as ``.gz`` is handled) or ``format=``. Placeholders in paths are
those of ``legato.connectors.targets``. A write appears whole or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from legato.connectors.rows import FrameKind, dumps, from_arrow, row_batches, to_arrow
from legato.connectors.targets import atomic_open, filesystem_for, fill_path, format_of

if TYPE_CHECKING:
    import pyarrow as pa
    from fsspec import AbstractFileSystem

    from legato.definitions.context import Context

__all__ = ["Written", "read", "write"]


@dataclass(frozen=True)
class Written:
    """What ``write`` wrote: the path (placeholders filled) and the rows."""

    path: str
    rows: int


def _has_magic(path: str) -> bool:
    return any(c in path for c in "*?[")


def _hidden(path: str) -> bool:
    # Files being written (ours start with "."), and markers such as Spark's "_SUCCESS".
    return path.rsplit("/", 1)[-1].startswith((".", "_"))


def _read_one(fh: IO[bytes], fmt: str) -> pa.Table:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(fh)
    if fmt == "csv":
        import pyarrow.csv as pcsv

        return pcsv.read_csv(fh)
    import pyarrow.json as pjson

    return pjson.read_json(fh)


def _write_one(table: pa.Table, fh: IO[bytes], fmt: str) -> None:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, fh)
    elif fmt == "csv":
        import pyarrow.csv as pcsv

        pcsv.write_csv(table, fh)
    else:
        for batch in row_batches(table, 10_000):
            fh.write("".join(dumps(row) + "\n" for row in batch).encode("utf-8"))


def read(
    path: str,
    *,
    into: FrameKind = "pandas",
    ctx: Context | None = None,
    fields: Mapping[str, Any] | None = None,
    format: str | None = None,
    filesystem: AbstractFileSystem | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Any:
    """The rows of the file at ``path`` as a pandas (default) or polars DataFrame or a
    pyarrow Table (``into``). A glob (``*``, ``?``, ``[...]``) reads every file it matches,
    in name order, as one table (columns unified; names starting with ``.`` or ``_`` are
    skipped); matching nothing is a ``FileNotFoundError``. ``path``'s placeholders are filled
    from ``ctx`` and ``fields``; ``filesystem`` makes ``path`` a path inside it."""
    import pyarrow as pa
    from fsspec.utils import infer_compression

    filled = fill_path(path, ctx, fields)
    fmt = format_of(filled, format)
    fs, fs_path = filesystem_for(filled, filesystem, storage_options)
    if _has_magic(fs_path):
        paths = sorted(p for p in fs.glob(fs_path) if not _hidden(p))
        if not paths:
            raise FileNotFoundError(f"no file matches {filled!r}")
    else:
        paths = [fs_path]
    tables = []
    for one in paths:
        with fs.open(one, "rb", compression=infer_compression(one)) as fh:
            tables.append(_read_one(fh, fmt))
    table = tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="default")
    return from_arrow(table, into)


def write(
    data: Any,
    path: str,
    *,
    ctx: Context | None = None,
    fields: Mapping[str, Any] | None = None,
    format: str | None = None,
    filesystem: AbstractFileSystem | None = None,
    storage_options: Mapping[str, Any] | None = None,
    atomic: bool = True,
) -> Written:
    """Write ``data`` (a pandas or polars DataFrame, a pyarrow Table, or a list of dicts) to
    ``path``, replacing what was there, and say where and how many rows.

    The bytes go to a hidden file beside ``path`` that is then moved onto it (``atomic``):
    a reader sees the old file or the whole new one, and a failed write leaves no trace.
    ``atomic=False`` writes in place (one request fewer on an object store)."""
    filled = fill_path(path, ctx, fields)
    fmt = format_of(filled, format)
    table = to_arrow(data)
    fs, fs_path = filesystem_for(filled, filesystem, storage_options)
    with atomic_open(fs, fs_path, atomic=atomic) as fh:
        _write_one(table, fh, fmt)
    return Written(path=filled, rows=table.num_rows)
