"""Fixtures for the resource kinds' tests: a local HTTP server, a bucket on the local
S3-compatible server (tests/conftest.py's ``s3_endpoint``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.resources.servers import Server, serve_http


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
