"""The audit trail, read: who did what, when, from where and how it ended; and its check.

Rows are appended by the gate (``legato.services.gate``) and by signing in
(``legato.services.signin``); each holds the hash of the one before, so ``verify`` finds the
first row that was altered or removed since it was written.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from legato.services.actor import Actor
from legato.services.gate import Service, action

if TYPE_CHECKING:
    from legato.domain.access import AuditRecord
    from legato.services.workspace import Workspace

#: The most rows one read returns.
MAX_ROWS = 1000


class AuditTrail(Service):
    """Reading and checking the audit trail (admins only)."""

    def __init__(self, ws: Workspace, actor: Actor) -> None:
        super().__init__(actor)
        self.ws = ws

    @action("audit.read")
    def entries(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        before_seq: int | None = None,
        limit: int = 100,
    ) -> list[AuditRecord]:
        """Rows matching every filter given, newest first; ``before_seq`` pages back."""
        limit = max(1, min(limit, MAX_ROWS))
        return self.ws.store.audit.entries(
            actor=actor, action=action, since=since, before_seq=before_seq, limit=limit
        )

    @action("audit.read")
    def verify(self) -> int | None:
        """The seq of the first row altered or removed since it was written; None if intact."""
        return self.ws.store.audit.verify()
