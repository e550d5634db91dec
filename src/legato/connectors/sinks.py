"""Sinks that write pages of records to one file as they come: Parquet (one row group per
page, the schema taken from the first page or given, later pages cast to it) or JSON lines.
Each page is flushed to the file before the next is asked for, so memory holds one page.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any, Protocol

from legato.connectors.rows import dumps, table_of_records

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["JsonLinesSink", "PageSink", "ParquetSink", "conform", "sink_for"]


class PageSink(Protocol):
    """Where pages go, one call per page, then ``close`` once."""

    def write(self, records: list[Mapping[str, Any]]) -> None:
        """Write one page's records."""
        ...

    def close(self) -> None:
        """Finish the file (a Parquet footer); the caller closes the file itself."""
        ...


def conform(table: pa.Table, schema: pa.Schema, *, strict: bool, page: int) -> pa.Table:
    """``table`` with ``schema``'s columns in its order and types: missing columns are null,
    other types cast. A column ``schema`` lacks is an error when ``strict`` (the schema came
    from the first page, so the column would be lost), else dropped."""
    import pyarrow as pa

    names = set(schema.names)
    extra = [n for n in table.column_names if n not in names]
    if extra and strict:
        raise ValueError(
            f"page {page} has field {extra[0]!r}, which the first page did not: pass "
            "schema= (a pyarrow schema) to name every column"
        )
    columns = []
    for target in schema:
        if target.name not in table.column_names:
            columns.append(pa.nulls(table.num_rows, target.type))
            continue
        column = table[target.name]
        if column.type != target.type:
            try:
                column = column.cast(target.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise ValueError(
                    f"page {page}: field {target.name!r} is {column.type}, which does not "
                    f"cast to {target.type} (the first page's type; pass schema= to set it): "
                    f"{exc}"
                ) from exc
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=schema)


class ParquetSink:
    """Pages into one Parquet file, a row group each.

    Without a given schema, the file's is the first page's — unless a column is null on
    every row of it, so its type is unknown: then pages are held back (at most
    ``HOLD_PAGES``) until one gives every column a type, and the file takes the columns and
    types of all the pages held.
    """

    HOLD_PAGES = 8

    def __init__(self, fh: IO[bytes], schema: pa.Schema | None = None) -> None:
        self._fh = fh
        self._given = schema
        self._schema = schema
        self._writer: Any = None
        self._held: list[pa.Table] = []
        self._pages = 0

    def write(self, records: list[Mapping[str, Any]]) -> None:
        self._pages += 1
        if self._given is not None:
            self._emit(table_of_records(list(records), self._given))
            return
        table = table_of_records(list(records))
        if self._schema is not None:
            self._emit(conform(table, self._schema, strict=True, page=self._pages))
            return
        self._held.append(table)
        schema = self._unified()
        if len(self._held) >= self.HOLD_PAGES or not any(_untyped(f.type) for f in schema):
            self._release(schema)

    def _unified(self) -> pa.Schema:
        import pyarrow as pa

        try:
            return pa.unify_schemas([t.schema for t in self._held], promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise ValueError(
                f"pages 1 to {self._pages} do not agree on their columns' types (pass "
                f"schema= to set them): {exc}"
            ) from exc

    def _release(self, schema: pa.Schema) -> None:
        self._schema = schema
        first = self._pages - len(self._held) + 1
        held, self._held = self._held, []
        for number, table in enumerate(held, start=first):
            self._emit(conform(table, schema, strict=True, page=number))

    def _emit(self, table: pa.Table) -> None:
        import pyarrow.parquet as pq

        if self._writer is None:
            self._writer = pq.ParquetWriter(self._fh, table.schema)
        self._writer.write_table(table)
        self._fh.flush()

    def close(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._held:
            self._release(self._unified())
        if self._writer is None:
            # No page held a record: still a valid file, with the given schema if any.
            self._writer = pq.ParquetWriter(self._fh, self._given or pa.schema([]))
        self._writer.close()


def _untyped(type_: pa.DataType) -> bool:
    """Whether a column's type is unknown: null, or a list or struct with a null inside."""
    import pyarrow as pa

    if pa.types.is_null(type_):
        return True
    return any(_untyped(type_.field(i).type) for i in range(type_.num_fields))


class JsonLinesSink:
    """Pages into a JSON lines file, a record a line."""

    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh

    def write(self, records: list[Mapping[str, Any]]) -> None:
        self._fh.write("".join(dumps(r) + "\n" for r in records).encode("utf-8"))
        self._fh.flush()

    def close(self) -> None:
        return None


def sink_for(fmt: str, fh: IO[bytes], schema: pa.Schema | None = None) -> PageSink:
    """The sink writing ``fmt`` (``"parquet"`` or ``"jsonl"``) to ``fh``."""
    if fmt == "parquet":
        return ParquetSink(fh, schema)
    if fmt == "jsonl":
        if schema is not None:
            raise ValueError("schema= is for Parquet; JSON lines keep each record as it is")
        return JsonLinesSink(fh)
    raise ValueError(f"pages are written as parquet or jsonl, not {fmt}")
