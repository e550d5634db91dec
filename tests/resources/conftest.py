"""Fixtures for the resource kinds' tests: a local HTTP server, an S3-compatible server
(moto's server mode)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import free_port
from tests.resources.servers import Server, serve_http


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The URL of a local S3-compatible server (moto in a thread of the test process)."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """A new, empty bucket and the storage options that reach it; removed after the test."""
    import s3fs

    options: dict[str, Any] = {"endpoint_url": s3_endpoint, "key": "test", "secret": "test"}
    bucket = f"bucket-{uuid.uuid4().hex[:12]}"
    fs = s3fs.S3FileSystem(**options)
    fs.mkdir(bucket)
    try:
        yield bucket, options
    finally:
        fs.rm(bucket, recursive=True)


@pytest.fixture
def http_server() -> Iterator[Server]:
    """A local HTTP server (see ``Server``), shut down after the test."""
    with serve_http() as server:
        yield server
