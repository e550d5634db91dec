"""Fixtures for connector tests: an S3-compatible server (moto's, on 127.0.0.1)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.helpers import free_port


@dataclass(frozen=True)
class S3:
    """A bucket on the local S3 server, and the storage options that reach it."""

    bucket: str
    options: dict[str, Any]

    def url(self, path: str) -> str:
        return f"s3://{self.bucket}/{path}"


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    """moto's S3 server on a free port of 127.0.0.1, for the tests of a module."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(s3_server: str) -> S3:
    """A new, empty bucket on the local S3 server."""
    import uuid

    import s3fs

    options = {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": s3_server, "region_name": "eu-west-1"},
    }
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    s3fs.S3FileSystem(**options).mkdir(bucket)
    return S3(bucket, options)
