"""Where the CLI prints: Rich on a terminal, plain text when piped.

Rich costs ~45 ms to import; a `legato run` whose output goes to a pipe or a file (CI,
cron, scripts) prints plain lines without it. Both take the same markup: ``[bold]..[/]``
tags are drawn on a terminal and dropped in plain text. Text from users and tasks (errors,
names) goes through ``escape`` so that brackets in it are never read as tags.
"""

from __future__ import annotations

import re
import sys
from typing import IO, TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from rich.console import Console

# A tag starts with a letter, '#', '/' or '@' right after '[' (as Rich reads markup).
_TAG = re.compile(r"(\\*)(\[[a-z#/@][^[]*?\])")


def escape(text: str) -> str:
    """Make ``text`` print as written under markup: brackets that look like tags are escaped."""
    return _TAG.sub(lambda m: f"{m.group(1) * 2}\\{m.group(2)}", text)


def strip_markup(text: str) -> str:
    """Markup as plain text: tags removed, escaped brackets kept."""

    def one(m: re.Match[str]) -> str:
        slashes, tag = m.group(1), m.group(2)
        if len(slashes) % 2:
            return slashes[: len(slashes) // 2] + tag
        return slashes[: len(slashes) // 2]

    return _TAG.sub(one, text)


class Printer(Protocol):
    """What the CLI needs of a console."""

    @property
    def is_terminal(self) -> bool: ...

    def print(self, *objects: Any, **options: Any) -> None: ...


class PlainConsole:
    """Prints markup as plain lines, for output that is not a terminal."""

    is_terminal = False

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def print(self, *objects: Any, **_: Any) -> None:
        self.stream.write(strip_markup(" ".join(str(o) for o in objects)) + "\n")
        self.stream.flush()


def rich_console(stderr: bool = False) -> Console:
    """A Rich console (tables and live views need one even when piped)."""
    import os

    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Piped, Rich would assume 80 columns and cut names short; a file has room.
    width = None if stream.isatty() or os.environ.get("COLUMNS") else 160
    return Console(stderr=stderr, highlight=False, width=width)


def console(stderr: bool = False) -> Printer:
    """Rich on a terminal, plain text otherwise."""
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return rich_console(stderr)
    return PlainConsole(stream)
