"""A pipeline's code as the store keeps it: the snapshot of each code version, the source
texts by hash, and what the last load of each project found (``RunStore`` holds these, as a
run points at its code version).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select

from legato.domain.records import CodeLocationRecord
from legato.store import dialect, rows
from legato.store.database import Part
from legato.store.schema import code_locations, code_texts, snapshots


class CodeRecords(Part):
    """Snapshots, source texts and code locations."""

    @rows.unwrap_bind_errors
    def save_snapshot(
        self, pipeline: str, code_version: str, snapshot: dict[str, Any], now: datetime
    ) -> bool:
        """Store the pipeline's snapshot unless one exists for this code version.

        Returns True when it was stored now. The first snapshot of a code version wins.
        """
        # SQLAlchemy 2.1 drops an INSERT's rowcount unless asked to keep it.
        stmt = dialect.insert_ignoring_conflict(self._backend, snapshots).execution_options(
            preserve_rowcount=True
        )
        values = {
            "pipeline": pipeline,
            "code_version": code_version,
            "snapshot": rows.to_json(snapshot),
            "created_at": now,
        }
        with self._write.begin() as conn:
            return conn.execute(stmt, values).rowcount == 1

    @rows.unwrap_bind_errors
    def save_code_texts(self, texts: Mapping[str, str], now: datetime) -> None:
        """Keep the source texts by their sha256 (those already kept are left as they are)."""
        if not texts:
            return
        with self._engine.connect() as conn:
            have = set(
                conn.execute(
                    select(code_texts.c.sha256).where(code_texts.c.sha256.in_(list(texts)))
                ).scalars()
            )
        missing = [
            {"sha256": sha, "text": text, "created_at": now}
            for sha, text in texts.items()
            if sha not in have
        ]
        if missing:
            stmt = dialect.insert_ignoring_conflict(self._backend, code_texts)
            with self._write.begin() as conn:
                conn.execute(stmt, missing)

    def get_code_texts(self, hashes: Collection[str]) -> dict[str, str]:
        """The kept source texts of these sha256 hashes (those not kept are left out)."""
        if not hashes:
            return {}
        with self._engine.connect() as conn:
            found = conn.execute(
                select(code_texts.c.sha256, code_texts.c.text).where(
                    code_texts.c.sha256.in_(list(hashes))
                )
            )
            return {sha: text for sha, text in found}

    def save_code_location(self, location: CodeLocationRecord) -> None:
        """Replace what is known of the project ``location.name`` with this load's findings."""
        values = {
            "name": location.name,
            "root": location.root,
            "loaded_at": location.loaded_at,
            "pipelines": rows.to_json(location.pipelines),
            "errors": rows.to_json(location.errors),
        }
        with self._write.begin() as conn:
            # Two processes loading the project at once (two schedulers starting) would both
            # find no row to delete and both insert: one at a time.
            dialect.lock_names(conn, [f"code_location:{location.name}"])
            conn.execute(code_locations.delete().where(code_locations.c.name == location.name))
            conn.execute(code_locations.insert(), values)

    def get_code_location(self, name: str) -> CodeLocationRecord | None:
        """What the last recorded load of project ``name`` found, or None."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(code_locations).where(code_locations.c.name == name)
            ).one_or_none()
        if row is None:
            return None
        return CodeLocationRecord(
            name=row.name,
            root=row.root,
            loaded_at=row.loaded_at,
            pipelines=rows.from_json(row.pipelines),
            errors=rows.from_json(row.errors),
        )

    def get_snapshot(self, pipeline: str, code_version: str) -> dict[str, Any] | None:
        """The snapshot saved for ``(pipeline, code_version)``, or None."""
        stmt = select(snapshots.c.snapshot).where(
            snapshots.c.pipeline == pipeline, snapshots.c.code_version == code_version
        )
        with self._engine.connect() as conn:
            found = conn.execute(stmt).scalar_one_or_none()
        return None if found is None else dict(rows.from_json(found))
