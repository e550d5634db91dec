"""Materializations of assets: written with the driver step that records the producing task's
success (``write_materializations``, inside ``RunStore.apply``'s transaction), and read per
asset, per partition and per run.

Every read walks an index: (asset, id) for an asset's latest and its history, (asset,
partition, id) for its partitions, (run_id) for a run's. The latest of many assets is one
index probe per asset (a ``MAX(id)`` per key, the keys bound as one parameter), never a
scan of the table: a catalog of 10,000 assets over 1,000,000 materializations reads 10,000
rows. An asset trigger's look for new materializations is a range of (asset, id) per key,
and for those of runs it waits for a probe of (run_id).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import Connection, func, insert, select

from legato.domain.materializations import AssetCounts, Materialization, NewMaterialization
from legato.store.database import Part
from legato.store.dialect import json_int, text_values
from legato.store.rows import from_json, to_json
from legato.store.schema import materializations, runs

_m = materializations.c
#: The table's columns but metadata.
_BARE = [c for c in materializations.c if c.name != "metadata"]


def _record(row: Any) -> Materialization:
    *head, metadata = row  # the table's columns, metadata last
    return Materialization(*(*head, from_json(metadata)))


def _brief(row: Any) -> Materialization:
    *head, rows = row  # the columns before metadata, then the row count read from it
    return Materialization(*(*head, {} if rows is None else {"rows": rows}))


def _values(m: NewMaterialization) -> dict[str, Any]:
    return {c.name: getattr(m, c.name) for c in materializations.c if c.name != "id"} | {
        "metadata": to_json(m.metadata)
    }


def write_materializations(conn: Connection, items: Sequence[NewMaterialization]) -> None:
    """Insert ``items`` inside the caller's transaction (a driver step's)."""
    if items:
        conn.execute(insert(materializations), [_values(m) for m in items])


class AssetStore(Part):
    """Materializations of assets, newest first wherever there are several."""

    def record(self, items: Sequence[NewMaterialization]) -> None:
        """Insert ``items`` in a transaction of their own (runs record theirs in their
        driver's step instead)."""
        with self._write.begin() as conn:
            write_materializations(conn, items)

    def latest(self, assets: Collection[str], *, brief: bool = False) -> dict[str, Materialization]:
        """The newest materialization of each of ``assets`` that has one, by asset; ``brief``:
        with its metadata's ``rows`` alone (read in the database: a graph of thousands of
        assets needs no previews)."""
        keys = sorted(set(assets))
        if not keys:
            return {}
        given = text_values(keys, self._backend)
        newer = materializations.alias("newer")
        newest = select(func.max(newer.c.id)).where(newer.c.asset == given.c.value)
        if brief:
            rows = json_int(_m.metadata, "rows", self._backend).label("rows")
            columns = [*_BARE, rows]
        else:
            columns = list(materializations.c)
        stmt = select(*columns).select_from(given).join(
            materializations, _m.id == newest.scalar_subquery()
        )
        read = _brief if brief else _record
        with self._engine.connect() as conn:
            return {r.asset: read(r) for r in conn.execute(stmt)}

    def partitions(
        self, asset: str, *, limit: int | None = None, before: str | None = None
    ) -> list[Materialization]:
        """The newest materialization of each partition of ``asset``, by partition, the
        greatest first (None, an asset without partitions, last); ``before``: only the
        partitions that sort before it (the next page)."""
        newest = select(func.max(_m.id).label("id")).where(_m.asset == asset)
        if before is not None:
            newest = newest.where(_m.partition < before)
        newest = newest.group_by(_m.partition)
        stmt = (
            select(materializations)
            .where(_m.id.in_(newest))
            .order_by(_m.partition.desc().nulls_last())
        )
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._engine.connect() as conn:
            return [_record(r) for r in conn.execute(stmt)]

    def history(
        self,
        asset: str,
        *,
        partition: str | None = None,
        before_id: int | None = None,
        limit: int = 50,
    ) -> list[Materialization]:
        """Materializations of ``asset`` (of one ``partition`` if given), newest first;
        ``before_id`` pages on: those older than that id."""
        stmt = select(materializations).where(_m.asset == asset)
        if partition is not None:
            stmt = stmt.where(_m.partition == partition)
        if before_id is not None:
            stmt = stmt.where(_m.id < before_id)
        stmt = stmt.order_by(_m.id.desc()).limit(limit)
        with self._engine.connect() as conn:
            return [_record(r) for r in conn.execute(stmt)]

    def of_run(self, run_id: str) -> list[Materialization]:
        """What the run ``run_id`` materialized, in the order it was recorded."""
        stmt = select(materializations).where(_m.run_id == run_id).order_by(_m.id)
        with self._engine.connect() as conn:
            return [_record(r) for r in conn.execute(stmt)]

    def last_id(self) -> int:
        """The id of the newest materialization of any asset (0 when there is none)."""
        with self._engine.connect() as conn:
            return int(conn.execute(select(func.max(_m.id))).scalar() or 0)

    def materialized_after(
        self, after_id: int, assets: Collection[str], *, limit: int = 500
    ) -> list[Materialization]:
        """Materializations of ``assets`` with an id above ``after_id``, in id order, without
        their metadata (an asset trigger's events: the id is its cursor)."""
        keys = sorted(set(assets))
        if not keys:
            return []
        stmt = (
            select(*_BARE)
            .where(_m.asset.in_(keys), _m.id > after_id)
            .order_by(_m.id)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [Materialization(*(*r, {})) for r in conn.execute(stmt)]

    def of_runs(
        self, run_ids: Collection[str], assets: Collection[str]
    ) -> list[tuple[Materialization, str]]:
        """What the runs ``run_ids`` materialized of ``assets``, in id order, each with its
        run's state, without metadata."""
        if not run_ids or not assets:
            return []
        stmt = (
            select(*_BARE, runs.c.state)
            .join(runs, runs.c.id == _m.run_id)
            .where(_m.run_id.in_(sorted(set(run_ids))), _m.asset.in_(sorted(set(assets))))
            .order_by(_m.id)
        )
        with self._engine.connect() as conn:
            return [(Materialization(*(*r[:-1], {})), r[-1]) for r in conn.execute(stmt)]

    def counts(self, asset: str) -> AssetCounts:
        """How many materializations ``asset`` has, and in how many partitions."""
        stmt = select(
            func.count(), func.count(func.distinct(_m.partition))
        ).where(_m.asset == asset)
        with self._engine.connect() as conn:
            total, parts = conn.execute(stmt).one()
        return AssetCounts(asset, int(total), int(parts))
