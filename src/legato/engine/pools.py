"""A run's claims on named pools of task slots, shared through the store by every driver.

A task with ``pool`` set holds one slot of that pool (``PoolStore.claim_pool_slot``) from just
before its attempt is submitted until the attempt's outcome is delivered. A task whose pool is
full stays queued and waits here, beside the run's dispatch queue, so that it does not keep
the run's other ready tasks from the free workers. Slots freed by other processes can only be
seen by asking the store again: waiting tasks are retried every ``poll`` seconds, or at once
after a slot was given back in this process (``freed``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from legato.domain.records import NewEvent
from legato.store.db import is_unavailable
from legato.store.faces import DriverStore


class PoolClaims:
    """One run's pool slots: claiming, giving back, and the tasks waiting for a slot."""

    def __init__(self, store: DriverStore, run_id: str, poll: float) -> None:
        self.store = store
        self.run_id = run_id
        self.poll = poll
        # task key -> pool, in the order the tasks were put aside (oldest are retried first).
        self.waiting: dict[str, str] = {}
        self.held: dict[str, str] = {}  # task key -> pool, for the slots claimed here
        self.released: set[str] = set()  # pools given back since the owner last took them
        self._next_try: datetime | None = None
        self._hint = False
        self._full: set[str] = set()  # pools found full in this step: not asked again
        self._unreleased: set[str] = set()  # keys whose release the store missed (it was down)

    def new_step(self) -> None:
        """Forget which pools were full: the next step asks the store again."""
        self._full.clear()

    def admit(self, key: str, pool: str, now: datetime, events: list[NewEvent]) -> bool:
        """Claim a slot of ``pool`` for ``key``, else put ``key`` aside (noting it in
        ``events`` the first time). NotFound when there is no such pool."""
        if pool not in self._full and self.claim(pool, key, now):
            return True
        self._full.add(pool)
        if self.hold(key, pool, now):
            msg = f"waiting for a slot of pool {pool!r}"
            events.append(NewEvent(self.run_id, key, "pool", None, "waiting", now, msg))
        return False

    def claim(self, pool: str, key: str, now: datetime) -> bool:
        """Take a slot of ``pool`` for ``key``; False when the pool is full (NotFound if none)."""
        try:
            self._retry_releases()
            got = self.store.pools.claim_pool_slot(pool, self.run_id, key, now)
        except Exception as exc:
            if is_unavailable(exc):
                return False  # as if full: asked again at the next pool poll
            raise
        if not got:
            return False
        self.held[key] = pool
        self.stop_waiting(key)
        return True

    def hold(self, key: str, pool: str, now: datetime) -> bool:
        """Put ``key`` aside until a slot of ``pool`` is free; True if it was not waiting yet."""
        if key in self.waiting:
            return False
        self.waiting[key] = pool
        if self._next_try is None:
            self._next_try = now + timedelta(seconds=self.poll)
        return True

    def stop_waiting(self, key: str) -> None:
        """``key`` got its slot, or no longer needs one."""
        self.waiting.pop(key, None)
        if not self.waiting:
            self._next_try = None

    def due(self, now: datetime) -> bool:
        """Whether the waiting tasks should ask the store again now."""
        return bool(self.waiting) and (
            self._hint or (self._next_try is not None and now >= self._next_try)
        )

    def tried(self, now: datetime, *, asked: bool) -> None:
        """The waiting tasks were retried (``asked``), or could not be for want of workers.

        Not asking keeps a pending hint: the next step with a free worker asks at once.
        """
        if asked:
            self._hint = False
        self._next_try = now + timedelta(seconds=self.poll) if self.waiting else None

    def freed(self) -> None:
        """A slot was given back in this process: waiting tasks ask again on the next step."""
        if self.waiting:
            self._hint = True

    def seconds_to_retry(self, now: datetime) -> float | None:
        """How long until the waiting tasks ask the store again (None when none waits)."""
        if not self.waiting or self._next_try is None:
            return None
        return max(0.0, (self._next_try - now).total_seconds())

    def release(self, key: str) -> None:
        """Give back the slot ``key`` holds, if it holds one."""
        pool = self.held.pop(key, None)
        if pool is None:
            return
        try:
            self.store.pools.release_pool_slot(self.run_id, key)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            self._unreleased.add(key)  # given back once the store answers again
        self.released.add(pool)
        self.freed()

    def _retry_releases(self) -> None:
        for key in sorted(self._unreleased):
            self.store.pools.release_pool_slot(self.run_id, key)
            self._unreleased.discard(key)

    def release_all(self) -> None:
        """Give back every slot the run holds in the store (also those claimed by a driver
        before this one), and forget the waiting tasks."""
        self.store.pools.release_pool_slot(self.run_id)
        self.released.update(self.held.values())
        self.held.clear()
        self.waiting.clear()
        self._next_try = None
        self._hint = False

    def take_released(self) -> set[str]:
        """The pools given back since the last call (for other runs of this process)."""
        out, self.released = self.released, set()
        return out
