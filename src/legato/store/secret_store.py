"""Secrets, sealed: each value as the key ring's ``v1.ID.DATA`` text and the id of the key
that sealed it. The store never sees a value in plain text; the services seal and open."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update

from legato.domain.access import SecretRecord
from legato.store import rows
from legato.store.database import Part
from legato.store.dialect import insert_if_missing
from legato.store.schema import secrets as secret_rows

_c = secret_rows.c


class SecretStore(Part):
    """Sealed secrets by name."""

    @rows.unwrap_bind_errors
    def put_secret(
        self, name: str, sealed: str, key_id: str, now: datetime, *, by: str
    ) -> SecretRecord:
        """Set the secret ``name`` (created or replaced) to ``sealed``, sealed under ``key_id``."""
        changes = {"sealed": sealed, "key_id": key_id, "updated_at": now, "updated_by": by,
                   "sealed_at": now}  # fmt: skip
        key = _c.name == name
        with self._write.begin() as conn:
            if not conn.execute(update(secret_rows).where(key).values(changes)).rowcount:
                new = {"name": name, "created_at": now, **changes}
                if not insert_if_missing(conn, secret_rows, new):  # a concurrent put made it
                    conn.execute(update(secret_rows).where(key).values(changes))
            return SecretRecord(*conn.execute(select(secret_rows).where(key)).one())

    def get_secret(self, name: str) -> SecretRecord | None:
        """The sealed secret ``name``, or None."""
        with self._engine.connect() as conn:
            found = conn.execute(select(secret_rows).where(_c.name == name)).first()
        return None if found is None else SecretRecord(*found)

    def list_secrets(self) -> list[SecretRecord]:
        """Every secret, by name. Show callers names and dates only, never ``sealed``: it is
        ciphertext, but nothing needs it outside the service that opens it."""
        with self._engine.connect() as conn:
            return [SecretRecord(*r) for r in conn.execute(select(secret_rows).order_by(_c.name))]

    def delete_secret(self, name: str) -> bool:
        """Delete the secret ``name``; False if there was none."""
        with self._write.begin() as conn:
            return bool(conn.execute(delete(secret_rows).where(_c.name == name)).rowcount)

    @rows.unwrap_bind_errors
    def reseal(
        self, name: str, old_sealed: str, new_sealed: str, key_id: str, now: datetime
    ) -> bool:
        """Replace ``old_sealed`` by ``new_sealed`` (the same value under ``key_id``), only if
        the secret still holds ``old_sealed``: a rotation racing a ``put_secret`` leaves the new
        value alone (and reports False, to seal it again). When and by whom the value was set
        stay as they were; ``sealed_at`` becomes ``now``."""
        stmt = update(secret_rows).where(_c.name == name, _c.sealed == old_sealed)
        with self._write.begin() as conn:
            done = conn.execute(stmt.values(sealed=new_sealed, key_id=key_id, sealed_at=now))
            return bool(done.rowcount)

    def secrets_not_under(self, key_id: str) -> list[SecretRecord]:
        """The secrets sealed under another key than ``key_id`` (left to rotate), by name."""
        stmt = select(secret_rows).where(_c.key_id != key_id).order_by(_c.name)
        with self._engine.connect() as conn:
            return [SecretRecord(*r) for r in conn.execute(stmt)]
