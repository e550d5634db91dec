"""Shared fixtures for opening a Legato store on either backend in tests.

API (kept small on purpose):

``BACKENDS``
    ``("sqlite", "postgresql")`` - parametrize over it.
``pg_url`` (fixture)
    URL of a fresh, empty PostgreSQL schema, dropped after the test. The server is
    ``LEGATO_TEST_PG_URL`` if set, else ``127.0.0.1:5432`` database ``test`` as user
    ``postgres`` or ``root`` (trust auth). Unreachable: the test is skipped, or fails when the
    environment variable ``CI`` is ``"true"``.
``store_url_for`` (fixture)
    ``store_url_for(backend) -> str``: a URL for an empty database of that backend (a SQLite
    file in ``tmp_path`` or a fresh PostgreSQL schema), cleaned up after the test.
``open_store`` (fixture)
    ``open_store(backend) -> Store``: a migrated store on such a database, closed after the test.
    E.g. ``@pytest.fixture(params=BACKENDS) def store(request, open_store): return
    open_store(request.param)``.

Every test writes only under its ``tmp_path``: a test run that leaves new files in the
repository checkout fails (see ``_checkout_stays_clean``).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest

if TYPE_CHECKING:
    from legato.store.store import Store

BACKENDS = ("sqlite", "postgresql")

_PG_CANDIDATES = (
    "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "postgresql+psycopg://root@127.0.0.1:5432/test",
)
_pg_probe: tuple[str | None, str] | None = None  # (url or None, reason), probed once


def _pg_server() -> tuple[str | None, str]:
    """The reachable PostgreSQL server URL (or None) and, if None, why."""
    global _pg_probe
    if _pg_probe is None:
        import psycopg

        explicit = os.environ.get("LEGATO_TEST_PG_URL")
        candidates = (explicit,) if explicit else _PG_CANDIDATES
        errors = []
        for url in candidates:
            try:
                psycopg.connect(_libpq(url), connect_timeout=3).close()
            except psycopg.Error as exc:
                errors.append(f"{url}: {str(exc).strip()}")
                continue
            _pg_probe = (url, "")
            break
        else:
            _pg_probe = (None, "PostgreSQL unreachable - " + "; ".join(errors))
    return _pg_probe


def _libpq(url: str) -> str:
    # psycopg wants a libpq URL, without SQLAlchemy's "+driver".
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _require_pg() -> str:
    url, reason = _pg_server()
    if url is None:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return url


@contextmanager
def _pg_schema() -> Iterator[str]:
    """Create a uniquely named schema; yield a URL whose search_path is it; drop it after."""
    import psycopg

    server = _require_pg()
    schema = f"legato_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(server), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{server}?options={quote(f'-csearch_path={schema}', safe='')}"
    finally:
        with psycopg.connect(_libpq(server), autocommit=True) as conn:
            # Never hang the suite on a connection a failed test left in a transaction.
            conn.execute("SET lock_timeout = '10s'")
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def pg_url() -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL schema (see the module docstring)."""
    with _pg_schema() as url:
        yield url


@pytest.fixture
def store_url_for(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """``store_url_for(backend)``: URL of an empty database, cleaned up after the test."""
    cleanups: list[Any] = []
    count = 0

    def make(backend: str) -> str:
        nonlocal count
        count += 1
        if backend == "sqlite":
            return f"sqlite:///{tmp_path / f'store{count}' / 'legato.db'}"
        if backend == "postgresql":
            ctx = _pg_schema()
            url = ctx.__enter__()
            cleanups.append(ctx)
            return url
        raise ValueError(f"unknown backend {backend!r}; use one of {BACKENDS}")

    yield make
    for ctx in reversed(cleanups):
        ctx.__exit__(None, None, None)


@pytest.fixture
def open_store(store_url_for: Callable[[str], str]) -> Iterator[Callable[[str], Store]]:
    """``open_store(backend)``: a migrated Store on an empty database, closed after the test."""
    from legato.store.store import Store

    opened: list[Store] = []

    def make(backend: str) -> Store:
        store = Store.open(store_url_for(backend))
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def _reachable(env: str, default: str, what: str) -> str:
    """A service's URL (``env`` overrides); unreachable: skip, or fail when CI=true."""
    import socket
    from urllib.parse import urlsplit

    url = os.environ.get(env, default)
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), 0.5):
            pass
    except OSError as exc:
        reason = f"{what} is not reachable at {url}: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return url


@pytest.fixture(scope="session")
def redis_url() -> str:
    """``LEGATO_TEST_REDIS_URL`` or the local Redis."""
    return _reachable("LEGATO_TEST_REDIS_URL", "redis://127.0.0.1:6379/0", "Redis")


@pytest.fixture(scope="session")
def nats_url() -> str:
    """``LEGATO_TEST_NATS_URL`` or the local NATS server (with JetStream)."""
    return _reachable("LEGATO_TEST_NATS_URL", "nats://127.0.0.1:4222", "NATS")


@pytest.fixture(scope="session")
def amqp_url() -> str:
    """``LEGATO_TEST_AMQP_URL`` or the local RabbitMQ."""
    return _reachable("LEGATO_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/", "RabbitMQ")


@pytest.fixture(scope="session")
def mqtt_url() -> str:
    """``LEGATO_TEST_MQTT_URL`` or the local MQTT broker (Mosquitto)."""
    return _reachable("LEGATO_TEST_MQTT_URL", "mqtt://127.0.0.1:1883", "MQTT broker")


# -- the checkout stays clean -------------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]
# What running the tools and the tests is expected to leave in the checkout.
_EXPECTED = frozenset(
    {
        ".git",
        ".venv",
        "__pycache__",
        ".pytest_cache",
        ".mypy_cache",
        ".ruff_cache",
    }
)


def pytest_configure(config: pytest.Config) -> None:
    # With no usable system temp dir, tempfile falls back to the working directory: then
    # tmp_path, Dask's scratch space and every tempfile of the tests would be in the checkout.
    temp = Path(tempfile.gettempdir()).resolve()
    if temp == REPO or REPO in temp.parents:
        raise pytest.UsageError(
            f"the temp dir is {temp}, inside the repository checkout (TMPDIR, /tmp and "
            "/var/tmp are unusable?): set TMPDIR to a writable folder outside it"
        )
    _keep_hypothesis_out_of_the_checkout()


def _expected(rel: str) -> bool:
    if rel.endswith((".pyc", ".pyo")):
        return True
    return any(p in _EXPECTED or p.endswith(".egg-info") for p in rel.rstrip("/").split("/"))


def _checkout_files() -> set[str] | None:
    """Files in the checkout that git does not track, ignored ones included, less the
    expected caches (None when this is not a git checkout, e.g. an unpacked sdist)."""
    try:
        listed = subprocess.run(
            [
                *("git", "-C", str(REPO), "status", "--porcelain", "-z"),
                *("--untracked-files=all", "--ignored=matching"),
            ],
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found: set[str] = set()
    for entry in listed.decode(errors="surrogateescape").split("\0"):
        code, rel = entry[:2], entry[3:]
        if code not in ("??", "!!") or _expected(rel):
            continue
        if not rel.endswith("/"):
            found.add(rel)
            continue
        # An ignored folder is listed whole (.legato/, tmpXXXXXXXX/, ...): look inside, so a
        # file written into one that was there before counts too.
        for folder, subdirs, files in os.walk(REPO / rel):
            subdirs[:] = [d for d in subdirs if d not in _EXPECTED]
            inside = Path(folder).relative_to(REPO).as_posix()
            found.update(f"{inside}/{f}" for f in files if not _expected(f"{inside}/{f}"))
    return found


@pytest.fixture(scope="session", autouse=True)
def _checkout_stays_clean() -> Iterator[None]:
    """Fail the test run if it wrote files into the repository checkout.

    A relative path, a project made in the working directory or ``tempfile`` falling back to
    it (when the system temp dir is unusable) would put them there, and from there they get
    committed. Ignored paths count too: ``.gitignore`` hides them from ``git add``, not from
    this check.
    """
    before = _checkout_files()
    yield
    if before is None:
        return
    after = _checkout_files() or set()
    new = sorted(after - before)
    if new:
        shown = "\n  ".join(new[:50])
        if len(new) > 50:
            shown += f"\n  ... and {len(new) - 50} more"
        pytest.fail(
            f"the test run (any of its tests, not only this last one) wrote {len(new)} new "
            f"file(s) into the repository checkout {REPO}; tests must write only under their "
            f"tmp_path:\n  {shown}",
            pytrace=False,
        )


_hypothesis_dir: str | None = None


def _keep_hypothesis_out_of_the_checkout() -> None:
    """Hypothesis caches what it learns of the code (constants, Unicode tables) in a
    .hypothesis folder of the working directory, the checkout, even with database=None, and
    already while tests are collected: keep it in a temporary folder instead."""
    global _hypothesis_dir
    try:
        from hypothesis.configuration import set_hypothesis_home_dir
    except ImportError:  # not installed: nothing writes it
        return
    _hypothesis_dir = tempfile.mkdtemp(prefix="legato-hypothesis-")
    set_hypothesis_home_dir(_hypothesis_dir)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _hypothesis_dir is not None:
        import shutil

        shutil.rmtree(_hypothesis_dir, ignore_errors=True)


@pytest.fixture
def receiver() -> Iterator[Any]:
    """A webhook receiver on 127.0.0.1 that keeps what it is sent (``.got``, ``.url``,
    ``.status``: see tests/observability/test_webhook_channel.py), shut down after the test."""
    from tests.observability.test_webhook_channel import Receiver

    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The URL of a local S3-compatible server (moto in a thread of the test process)."""
    import logging

    from moto.server import ThreadedMotoServer

    from tests.helpers import free_port

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
