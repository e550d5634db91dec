"""Errors the service layer reports to front ends, each with a one-line message."""

from __future__ import annotations


class ServiceError(Exception):
    """Something the user asked for cannot be done as asked (bad input: exit code 2).

    ``field`` names the input at fault (a param, ``partition``...) when there is one.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFoundError(ServiceError):
    """No run, task, attempt or backfill with that id."""


class UnknownPipeline(NotFoundError):
    """No pipeline of that name in the project."""


class Conflict(ServiceError):
    """The action does not fit the run's state (e.g. re-running a run that still runs)."""
