"""``ctx.secrets``: secrets opened in the process running the task, each read audited.

A task's first read of a secret fetches its sealed value from the store, opens it with the
key ring (``LEGATO_SECRET_KEYS``, else the key file, read afresh so a rotation elsewhere is
seen at once) and appends a ``secrets.read`` row to the audit trail with the run as actor and
the task as detail. The values handed out are kept for the attempt, so that its log and error
can be masked when it ends (``masker``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from legato.clock import Clock, system_clock
from legato.definitions.secret_param import Secret, param_secret_name
from legato.executors.worker_store import worker_store as _store
from legato.security.audit import AuditEntry
from legato.security.keyring import ENV, KeyRing
from legato.security.masking import Masker

if TYPE_CHECKING:
    from legato.executors.interface import SecretSource

#: The audit trail's action for a task reading a secret, and the actor prefix of a run.
READ_ACTION = "secrets.read"
RUN_ACTOR = "run:"


class TaskSecrets(Mapping[str, str]):
    """The secrets one attempt may read, opened lazily; read-only."""

    def __init__(
        self,
        source: SecretSource,
        run_id: str,
        task_key: str,
        attempt: int,
        *,
        worker: str | None = None,
        clock: Clock = system_clock,
    ) -> None:
        self._source = source
        self._run_id = run_id
        self._task_key = task_key
        self._attempt = attempt
        self._worker = worker
        self._clock = clock
        self._read: dict[str, str] = {}
        self._lock = threading.Lock()

    def __getitem__(self, name: str) -> str:
        with self._lock:
            if name in self._read:
                return self._read[name]
            store = _store(self._source.store_url)
            usable = isinstance(name, str) and not name.startswith("@")  # not a run's param
            found = store.secrets.get_secret(name) if usable else None
            if found is None:
                raise KeyError(
                    f"no secret named {name!r} (an admin sets it: legato secrets set {name})"
                )
            ring = self._ring(f"secret {name!r}")
            value = ring.open(found.sealed, name).decode("utf-8", errors="replace")
            # Recorded before the task sees the value: a read that cannot be audited fails.
            store.audit.append(
                AuditEntry(
                    at=self._clock(),
                    actor=RUN_ACTOR + self._run_id,
                    auth="run",
                    source=self._worker or "",
                    action=READ_ACTION,
                    target=name,
                    outcome="ok",
                    detail={"task": self._task_key, "attempt": self._attempt},
                )
            )
            self._read[name] = value
            return value

    def param(self, name: str) -> Secret:
        """The value of the run's secret param ``name`` (sealed at launch for this run)."""
        with self._lock:
            sealed_as = param_secret_name(f"run/{self._run_id}", name)
            found = _store(self._source.store_url).secrets.get_secret(sealed_as)
            if found is None:
                raise KeyError(f"the value of secret param {name!r} is not in the store")
            ring = self._ring(f"secret param {name!r}")
            value = ring.open(found.sealed, sealed_as).decode("utf-8", errors="replace")
            self._read[sealed_as] = value
            return Secret(value)

    def _ring(self, what: str) -> KeyRing:
        key_file = Path(self._source.key_file) if self._source.key_file else None
        ring = KeyRing.load(key_file)
        if ring is None:
            raise KeyError(
                f"{what} cannot be opened here: no key ring ({ENV} is not set and there is no "
                f"key file at {key_file})"
            )
        return ring

    def __iter__(self) -> Iterator[str]:
        store = _store(self._source.store_url)
        return iter([s.name for s in store.secrets.list_secrets() if not s.name.startswith("@")])

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, name: object) -> bool:
        # Whether it exists, without opening (nor auditing) it.
        if not isinstance(name, str) or name.startswith("@"):
            return False
        return _store(self._source.store_url).secrets.get_secret(name) is not None

    def __repr__(self) -> str:
        return f"<secrets of run {self._run_id}, task {self._task_key}>"

    def masker(self) -> Masker:
        """What masks the values handed out so far."""
        with self._lock:
            return Masker.of(self._read.values())
