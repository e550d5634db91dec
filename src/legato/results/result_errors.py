"""Errors of the result store."""

from __future__ import annotations


class ResultError(Exception):
    """A result cannot be stored or read back (unpicklable value, missing or unreadable file).

    Retrying the attempt would not help, so the executor fails it without retry.
    ``reason`` is the cause alone, so that callers can phrase their own message around it.
    """

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason if reason is not None else message
