"""A custom resource kind for the tests: it writes a file under its ``folder`` when opened
(``opened-PID-N``) and when closed (``closed-PID``), so a test sees which process opened
and closed what, and how often."""

from __future__ import annotations

from pathlib import Path

#: The kind's source, written into test projects as ``tally.py``.
SOURCE = '''
import itertools
import os
from pathlib import Path

from legato.resources.kind import ResourceKind

_count = itertools.count(1)


class Client:
    def __init__(self, folder, password, pid):
        self.folder = folder
        self.password = password
        self.pid = pid


class Tally(ResourceKind):
    kind = "tally"
    settings_keys = {"folder", "password", "options"}

    def validate(self):
        self.require("folder")

    def open(self):
        folder = Path(self.settings["folder"])
        if not folder.is_dir():
            raise OSError(f"no folder {folder}")
        pid = os.getpid()
        (folder / f"opened-{pid}-{next(_count)}").write_text(self.name)
        return Client(folder, self.settings.get("password", ""), pid)

    def check(self, client):
        return f"folder {client.folder} is there"

    def close(self, client):
        (client.folder / f"closed-{client.pid}").write_text(self.name)
'''


def opened(folder: Path) -> list[str]:
    """The ``opened-PID-N`` marks under ``folder``."""
    return sorted(p.name for p in folder.glob("opened-*"))


def closed(folder: Path) -> list[str]:
    """The ``closed-PID`` marks under ``folder``."""
    return sorted(p.name for p in folder.glob("closed-*"))
