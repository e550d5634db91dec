"""The store as a worker process opens it: once per process and URL, on first use."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from legato.store.store import Store

_stores: dict[tuple[int, str], Store] = {}
_stores_lock = threading.Lock()


def worker_store(url: str) -> Store:
    """The store at ``url`` for this process, opened (without migrating) on the first call."""
    # A worker forked from the driver must not share the driver's connections (hence the pid
    # in the key).
    key = (os.getpid(), url)
    with _stores_lock:
        found = _stores.get(key)
        if found is None:
            from legato.store.store import Store

            found = _stores[key] = Store.open(url, migrate=False)
        return found
