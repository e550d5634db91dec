"""Watching the project's code for `legato dev`: file events instead of a stat poll.

The daemon otherwise stats the code's files every ``CODE_CHECK``; a watcher hears a save
within milliseconds and wakes the daemon's loop, which reloads the code (the workspace
decides whether it really changed). The folders watched are those a load read code from:
the project folder, its packages' folders and the folders of code imported from outside it
(each on its own, not recursively, so a virtualenv or the store's folder inside the project
costs nothing). ``watchfiles`` is imported here only, so no other command pays for it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("legato.daemon")

#: Changes within this many milliseconds of each other are one save (an editor writing a
#: file in steps, a formatter run on save).
SETTLE_MS = 30
#: The watcher looks this often (ms) whether the code's folders changed (a new package).
RECHECK_MS = 1000
#: Files whose change may be new code: modules and the project's settings.
EXTENSIONS = (".py", ".toml")


class CodeWatcher(threading.Thread):
    """Calls ``changed()`` whenever a code file under ``folders()`` is written, created,
    removed or renamed; follows ``folders()`` as reloads change it. Ends on ``stop()``."""

    def __init__(self, folders: Callable[[], list[str]], changed: Callable[[], None]) -> None:
        super().__init__(name="legato-code-watcher", daemon=True)
        self._folders = folders
        self._changed = changed
        self._halt = threading.Event()
        self.watching: list[str] = []
        self.ready = threading.Event()  # set once the first folders are watched

    def stop(self) -> None:
        """End the thread (within ``RECHECK_MS``)."""
        self._halt.set()

    def run(self) -> None:
        from watchfiles import watch

        while not self._halt.is_set():
            self.watching = self._folders()
            self.ready.set()
            try:
                for changes in watch(
                    *self.watching,
                    watch_filter=_is_code,
                    debounce=1000,
                    step=SETTLE_MS,
                    stop_event=self._halt,
                    rust_timeout=RECHECK_MS,
                    yield_on_timeout=True,
                    recursive=False,
                    raise_interrupt=False,
                ):
                    if changes:
                        self._changed()
                    if self._folders() != self.watching:
                        break  # watch the new set
            except Exception as exc:  # a folder removed under us: the stat poll still runs
                log.warning("watching the code's folders failed: %s", exc)
                if self._halt.wait(RECHECK_MS / 1000):
                    return


def _is_code(change: object, path: str) -> bool:
    return path.endswith(EXTENSIONS) and "__pycache__" not in path


__all__ = ["CodeWatcher"]
