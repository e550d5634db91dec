"""Errors user code sees or raises."""

from __future__ import annotations


class DefinitionError(Exception):
    """A pipeline or task is defined wrongly. The message names the file and line."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None) -> None:
        self.file = file
        self.line = line
        self.reason = message
        where = f"{file}:{line}: " if file and line else (f"{file}: " if file else "")
        super().__init__(f"{where}{message}")


class ParamError(ValueError):
    """A run was given params the pipeline does not accept; ``field`` names the param."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class FailNow(Exception):
    """Raise from a task to fail its attempt without any retry."""


class Skip(Exception):
    """Raise from a task to mark it skipped; its downstream tasks are skipped too."""
