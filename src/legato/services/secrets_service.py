"""Secrets: values tasks read as ``ctx.secrets["NAME"]``, sealed at rest with the key ring.

The key ring is ``LEGATO_SECRET_KEYS`` when set, else the key file of legato.toml's
``[secrets] key_file`` (default ``.legato/secret.keys``), made 0600 with a first key when the
first secret is set. Values are sealed here and opened only in the process running the task
that reads them (``legato.executors.secret_access``); no service hands a value back.

A key rotation adds a new primary key and seals every secret again under it, one compare-and-
swap at a time, so runs reading secrets and people setting them go on meanwhile: a value set
during the rotation is never overwritten by an older one. Until every secret is under the new
key the old ones still open what they sealed; then the rotation names the old keys that may
be dropped (and drops them from the key file when asked).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from legato.definitions.secret_param import MASKED, param_secret_name
from legato.executors.secret_access import READ_ACTION, RUN_ACTOR
from legato.security.files import replace_private
from legato.security.keyring import ENV, KeyRing, KeyRingError, SealError, new_key
from legato.security.masking import Masker
from legato.services.actor import Actor
from legato.services.gate import Service, action
from legato.services.service_errors import NotFoundError, ServiceError

if TYPE_CHECKING:
    from pathlib import Path

    from legato.definitions.pipeline import Pipeline
    from legato.domain.access import SecretRecord
    from legato.domain.records import RunRecord
    from legato.services.workspace import Workspace

#: Secret names: letters, digits and _ - . (what an environment variable or a path may hold).
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")
#: The largest value a secret may hold, in bytes of UTF-8.
MAX_VALUE = 64 * 1024
#: The most secret reads of one run looked at to mask its logs.
_MAX_READS = 1000


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """A secret as people may see it: its name and dates, never its value."""

    name: str
    created_at: datetime
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True, slots=True)
class Rotation:
    """What ``rotate_key`` did.

    ``primary``: the key that seals from now on; ``resealed``: how many secrets were sealed
    again under it; ``retired``: old key ids no secret is sealed with any more (they may be
    dropped); ``dropped``: those removed from the key file. With ``LEGATO_SECRET_KEYS`` the
    ring is not ours to write: ``new_ring`` is the value to set everywhere, after which a
    second ``rotate_key`` seals the secrets again (``resealed`` is 0 until then).
    """

    primary: str
    resealed: int
    retired: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()
    new_ring: str | None = None


def key_file(ws: Workspace) -> Path | None:
    """Where the key ring is kept when ``LEGATO_SECRET_KEYS`` is not set."""
    return ws.config.secret_key_file


def key_ring(ws: Workspace) -> KeyRing | None:
    """The project's key ring, read afresh (None before the first secret is set)."""
    try:
        return KeyRing.load(key_file(ws))
    except KeyRingError as exc:
        raise ServiceError(str(exc), "key_ring") from None


def ring_for_sealing(ws: Workspace) -> KeyRing:
    """The key ring, made (a key file with a first key) if there is none yet."""
    ring = key_ring(ws)
    if ring is not None:
        return ring
    path = key_file(ws)
    if path is None:
        raise ServiceError(f"no key ring: set {ENV} or [secrets] key_file", "key_ring")
    first = KeyRing.parse(f"k1:{new_key()}")
    try:
        replace_private(path, first.text().encode(), exclusive=True)
    except FileExistsError:  # another process made it first: use that one
        found = key_ring(ws)
        assert found is not None
        return found
    return first


def put_sealed(ws: Workspace, name: str, data: bytes, *, by: str) -> SecretRecord:
    """Set the secret ``name`` to ``data``, sealed under the key ring's primary key.

    A rotation in another process may write a new primary key after the ring was read here
    and look at this secret before it is written: then it is sealed again here under the new
    key (compare-and-swap, as the rotation does), so no secret stays behind under a key the
    rotation reports as no longer needed."""
    ring = ring_for_sealing(ws)
    sealed = ring.seal(data, name)
    made = ws.store.secrets.put_secret(name, sealed, ring.primary, ws.clock(), by=by)
    while (now := key_ring(ws)) is not None and now.primary != ring.primary:
        again = now.seal(data, name)
        if not ws.store.secrets.reseal(name, sealed, again, now.primary, ws.clock()):
            break  # set again meanwhile, or sealed again by the rotation itself
        ring, sealed = now, again
    return made


def seal_params(
    ws: Workspace,
    pipe: Pipeline,
    values: dict[str, Any],
    owner: str,
    *,
    by: str,
    copy_from: str | None = None,
) -> list[str]:
    """Seal the values of ``pipe``'s secret params in ``values`` into the store under
    ``owner`` (``run/ID``, ``backfill/ID``) and put ``****`` in their place; the names of the
    secrets made. With ``copy_from``, a value that reads ``****`` is that owner's sealed value,
    sealed again for ``owner`` (a re-run, a backfill's runs)."""
    secret = [n for n, p in pipe.params.items() if p.secret and values.get(n) is not None]
    if not secret:
        return []
    store = ws.store
    ring = ring_for_sealing(ws)
    made: list[str] = []
    for param in secret:
        target = param_secret_name(owner, param)
        if copy_from is not None and values[param] == MASKED:
            source = param_secret_name(copy_from, param)
            found = store.secrets.get_secret(source)
            if found is None:
                raise ServiceError(f"the value of secret param {param!r} is gone", param)
            try:
                plain = ring.open(found.sealed, source)
            except SealError as exc:
                raise ServiceError(str(exc), param) from None
        else:
            plain = str(values[param]).encode("utf-8")
        put_sealed(ws, target, plain, by=by)
        values[param] = MASKED
        made.append(target)
    return made


def hide_secret_params(
    ws: Workspace, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The arguments of a call naming a pipeline first, as the audit trail may keep them:
    the values of its secret params (in a ``params`` mapping) read ``****``, and a request
    body that may hold them is left out."""
    carried = (*args, *kwargs.values())
    if not any(isinstance(v, Mapping | bytes | bytearray) for v in carried):
        return args, kwargs  # no params: no need to look at the pipeline (nor load the code)
    name = args[0] if args and isinstance(args[0], str) else kwargs.get("pipeline")
    pipe = ws.project.pipelines.get(name) if isinstance(name, str) else None
    secret = {n for n, p in pipe.params.items() if p.secret} if pipe is not None else set()
    if not secret:
        return args, kwargs

    def hide(value: Any) -> Any:
        if isinstance(value, bytes | bytearray):
            return MASKED
        if isinstance(value, Mapping):
            return {k: MASKED if k in secret else v for k, v in value.items()}
        return value

    return tuple(hide(a) for a in args), {k: hide(v) for k, v in kwargs.items()}


def drop_sealed(ws: Workspace, names: list[str]) -> None:
    """Delete the sealed params ``names`` (their run was not made after all)."""
    for name in names:
        ws.store.secrets.delete_secret(name)


def run_masker(ws: Workspace, run: RunRecord) -> Masker:
    """The values of the secrets ``run`` has read so far (its ``secrets.read`` rows in
    the audit trail), as they are now: what its logs must not show while they are written.
    The worker masks each log for good when its attempt ends; this covers a log read before
    then, and attempts that never ended on their own (killed, crashed)."""
    store = ws.store
    reads = store.audit.entries(actor=RUN_ACTOR + run.id, action=READ_ACTION, limit=_MAX_READS)
    names = {r.target for r in reads if r.target}
    # The run's secret params: each reads **** in its params.
    names |= {param_secret_name(f"run/{run.id}", k) for k, v in run.params.items() if v == MASKED}
    if not names:
        return Masker()
    ring = key_ring(ws)
    values: list[str] = []
    for name in sorted(names):
        found = store.secrets.get_secret(name)
        if ring is None or found is None:
            continue
        try:
            values.append(ring.open(found.sealed, name).decode("utf-8", errors="replace"))
        except SealError:
            continue
    return Masker.of(values)


def mask_log_file(ws: Workspace, run_id: str, path: str) -> None:
    """Mask in the log file at ``path`` the secrets run ``run_id`` read (``run_masker``): for
    an attempt killed before its worker could do it."""
    masker = run_masker(ws, ws.store.runs.get_run(run_id))
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return
    masked = masker.mask_bytes(data)
    if masked != data:
        replace_private(path, masked)


class Secrets(Service):
    """Setting, listing, deleting and rotating the keys of the project's secrets (admins)."""

    def __init__(self, ws: Workspace, actor: Actor) -> None:
        super().__init__(actor)
        self.ws = ws

    @action("secrets.change", command=True, secret_args=True)
    def set(self, name: str, value: str) -> SecretInfo:
        """Set the secret ``name`` to ``value`` (created or replaced), sealed under the key
        ring's primary key; the first secret of a project makes its key file."""
        _check_name(name)
        data = value.encode("utf-8")
        if len(data) > MAX_VALUE:
            raise ServiceError(
                f"secret {name!r}: {len(data):,} bytes, more than the {MAX_VALUE:,} a secret "
                "may hold",
                "value",
            )
        made = put_sealed(self.ws, name, data, by=str(self.actor))
        return SecretInfo(made.name, made.created_at, made.updated_at, made.updated_by)

    @action("secrets.list")
    def names(self) -> list[SecretInfo]:
        """Every secret's name and dates, by name; never a value."""
        return [
            SecretInfo(s.name, s.created_at, s.updated_at, s.updated_by)
            for s in self.ws.store.secrets.list_secrets()
            if not s.name.startswith("@")  # the sealed params of runs are theirs
        ]

    @action("secrets.change", command=True)
    def delete(self, name: str) -> None:
        """Delete the secret ``name``; NotFoundError when there is none."""
        if not self.ws.store.secrets.delete_secret(name):
            raise NotFoundError(f"no secret {name!r}", "name")

    @action("secrets.rotate", command=True)
    def rotate_key(self, drop_old: bool = False) -> Rotation:
        """Add a new primary key and seal every secret again under it (see the module's
        docstring); with ``drop_old``, remove from the key file the old keys no secret needs.

        With ``LEGATO_SECRET_KEYS``: when every secret is under its primary key, a new ring is
        made and returned to be set (nothing is written); once it is set, call again to seal
        the secrets under its new primary key.
        """
        ring = key_ring(self.ws)
        if ring is None:
            raise ServiceError("there is no key ring yet: it is made with the first secret set")
        store = self.ws.store
        from_env = bool(os.environ.get(ENV))
        if from_env and drop_old:
            raise ServiceError(
                f"the key ring is in {ENV}: drop the old keys from it yourself", "drop_old"
            )
        if from_env and not store.secrets.secrets_not_under(ring.primary):
            added = ring.with_key(ring.next_id(), new_key())
            return Rotation(added.primary, 0, new_ring=added.text().strip().replace("\n", ","))
        if not from_env:
            ring = ring.with_key(ring.next_id(), new_key())
            self._write_ring(ring)
        resealed = self._reseal_all(ring)
        old = tuple(k for k in ring.keys if k != ring.primary)
        dropped: tuple[str, ...] = ()
        if drop_old and old:
            self._write_ring(KeyRing({ring.primary: ring.keys[ring.primary]}, ring.primary))
            # A process that read the file before the new key was added may have sealed a
            # value under an old key meanwhile: the ring held here still opens it.
            resealed += self._reseal_all(ring)
            dropped = old
        return Rotation(ring.primary, resealed, retired=old, dropped=dropped)

    # -- the key ring --------------------------------------------------------------------

    def _write_ring(self, ring: KeyRing) -> None:
        path = key_file(self.ws)
        assert path is not None
        replace_private(path, ring.text().encode())

    def _reseal_all(self, ring: KeyRing) -> int:
        """Seal every secret not under ``ring.primary`` again under it; how many were."""
        store = self.ws.store
        done = 0
        while left := store.secrets.secrets_not_under(ring.primary):
            for secret in left:
                try:
                    value = ring.open(secret.sealed, secret.name)
                except SealError as exc:
                    raise ServiceError(f"{exc}: add that key to the ring", "key_ring") from None
                if store.secrets.reseal(
                    secret.name,
                    secret.sealed,
                    ring.seal(value, secret.name),
                    ring.primary,
                    self.ws.clock(),
                ):
                    done += 1
                # else: set again meanwhile; the next pass sees it if that left it behind
        return done


def _check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ServiceError(
            f"{name!r} is not a usable secret name: 1 to 128 letters, digits and _ - .", "name"
        )
    return name


__all__ = [
    "MAX_VALUE",
    "Rotation",
    "SecretInfo",
    "Secrets",
    "drop_sealed",
    "hide_secret_params",
    "key_ring",
    "mask_log_file",
    "put_sealed",
    "ring_for_sealing",
    "run_masker",
    "seal_params",
]
