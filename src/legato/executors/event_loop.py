"""The event loop a worker process runs its async tasks on: one per process, kept from one
attempt (or batch) to the next, so that what a task keeps at module level for reuse (an HTTP
client, a connection pool) stays usable, bound to the loop it was made on. Other threads
(thread mode, tasks run in the driver) get a loop of their own per attempt."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_loop: asyncio.AbstractEventLoop | None = None
_pid = 0


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to its end: on this process's loop in the main thread, else on a loop
    of its own."""
    global _loop, _pid
    if threading.current_thread() is not threading.main_thread():
        return asyncio.run(coro)
    if _loop is None or _loop.is_closed() or _pid != os.getpid():
        _loop = asyncio.new_event_loop()  # a forked child must not reuse its parent's
        _pid = os.getpid()
        asyncio.set_event_loop(_loop)
    return _loop.run_until_complete(coro)
