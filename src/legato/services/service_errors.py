"""Errors the service layer reports to front ends, each with a one-line message."""

from __future__ import annotations

from legato.domain.records import Ambiguous, NotFound
from legato.domain.states import InvalidTransition


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


class BadRequest(ServiceError):
    """The request itself is unusable (a body that is not JSON, a key too long)."""


class Unauthenticated(ServiceError):
    """No credentials, or wrong ones (a webhook's token)."""


class Forbidden(ServiceError):
    """The actor is known but its role does not allow the action."""


class Conflict(ServiceError):
    """The action does not fit the run's state (e.g. re-running a run that still runs)."""


#: Errors front ends may meet, most specific first, and the HTTP status each answers with:
#: the API's JSON errors and the web UI's error pages agree.
STATUS: tuple[tuple[type[Exception], int], ...] = (
    (Unauthenticated, 401),
    (Forbidden, 403),
    (BadRequest, 400),
    (NotFoundError, 404),
    (NotFound, 404),
    (Ambiguous, 404),
    (Conflict, 409),
    (InvalidTransition, 409),
    (ServiceError, 422),
)


def status_of(exc: Exception) -> int:
    """The HTTP status of a service or store error (422 for any other ServiceError)."""
    return next(code for kind, code in STATUS if isinstance(exc, kind))


def store_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the store cannot be reached (PostgreSQL restarting, the network
    gone) rather than that something is wrong: callers wait and try again."""
    from legato.store.db import is_unavailable

    return is_unavailable(exc)


def disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk under the store is full: one line is enough to say it,
    the daemon's main loop stops on it with what to free."""
    from legato.store.db import is_disk_full

    return is_disk_full(exc)


def store_full(exc: BaseException, url: str) -> Exception | None:
    """A one-line StoreError saying which disk is full and what to free, when ``exc`` says
    the disk under the store at ``url`` is full (not an outage: waiting does not help);
    None for any other error."""
    from legato.store.db import full_error

    return full_error(exc, url)
