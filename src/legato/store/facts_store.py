"""Facts about the store itself, by name: what it belongs to, written once and then read.

``environment`` is the one kept today: the environment of legato.toml (``[env.NAME]``) the
store was first opened by, so that another environment's processes refuse to use it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from legato.store.database import Part
from legato.store.dialect import insert_if_missing
from legato.store.schema import store_facts

_c = store_facts.c


class FactStore(Part):
    """Facts about the store, each a name and a text value."""

    def get_fact(self, name: str) -> str | None:
        """The value of the fact ``name``, or None when it was never recorded."""
        with self._engine.connect() as conn:
            found: str | None = conn.execute(
                select(_c.value).where(_c.name == name)
            ).scalar_one_or_none()
        return found

    def settle_fact(self, name: str, value: str, now: datetime) -> str:
        """The value of the fact ``name``: ``value``, recorded at ``now``, when it had none;
        else the value recorded first (of two processes racing, the first to write wins)."""
        found = self.get_fact(name)  # the usual case: recorded long ago, no write needed
        if found is not None:
            return found
        with self._write.begin() as conn:
            insert_if_missing(conn, store_facts, {"name": name, "value": value, "set_at": now})
            kept: str = conn.execute(select(_c.value).where(_c.name == name)).scalar_one()
        return kept

    def facts(self) -> dict[str, str]:
        """Every fact recorded, by name."""
        with self._engine.connect() as conn:
            return {n: v for n, v in conn.execute(select(_c.name, _c.value).order_by(_c.name))}
