"""Fixtures for the store tests: a ``store`` on each backend and a record factory."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from legato.store.store import Store
from tests.store.store_testkit import Records


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, open_store: Callable[[str], Store]) -> Store:
    """A migrated, empty store; each test runs once per backend."""
    return open_store(request.param)


@pytest.fixture
def rec() -> Records:
    """A fresh record factory."""
    return Records(random.Random(1234))


@pytest.fixture
def sqlite_store(open_store: Callable[[str], Store]) -> Store:
    """A store on SQLite alone: for what depends on leases following the caller's clock."""
    return open_store("sqlite")


@pytest.fixture
def pg_store(open_store: Callable[[str], Store]) -> Store:
    """A store on PostgreSQL alone: for leases judged by the server's clock."""
    return open_store("postgresql")
